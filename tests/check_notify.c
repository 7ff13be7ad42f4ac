/*
 * NAME
 *	check_notify - tests of the sd_notify sender
 * DESCRIPTION
 *	A socket of the test's own, bound where $NOTIFY_SOCKET says (a path,
 *	or an abstract name written with '@'), receives exactly the state
 *	sent, as one datagram, with the sender's pid in its credentials (as
 *	systemd checks them for NotifyAccess=main). Without the variable
 *	nothing is sent; a name that is neither a path nor abstract, one too
 *	long for sun_path, and a socket nobody listens on are errors.
 */
#include "config.h"

#include <check.h>
#include <errno.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "notify.h"

static int bind_receiver(const char *name);
static ssize_t receive(int fd, char *buf, size_t size, pid_t *sender);

/* bind_receiver - a datagram socket bound as $NOTIFY_SOCKET would name it */
static int
bind_receiver(const char *name)
{
	struct sockaddr_un sun;
	size_t len = strlen(name);
	socklen_t addrlen;
	int fd, on = 1;

	ck_assert_uint_lt(len, sizeof(sun.sun_path));
	memset(&sun, 0, sizeof(sun));
	sun.sun_family = AF_UNIX;
	memcpy(sun.sun_path, name, len);
	addrlen = (socklen_t)sizeof(sun);
	if (name[0] == '@') {
		sun.sun_path[0] = '\0';
		addrlen = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + len);
	}
	fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	ck_assert_int_ge(fd, 0);
	ck_assert_int_eq(setsockopt(fd, SOL_SOCKET, SO_PASSCRED, &on,
	    sizeof(on)), 0);
	ck_assert_msg(bind(fd, (struct sockaddr *)&sun, addrlen) == 0,
	    "bind %s: %s", name, strerror(errno));
	return fd;
}

/* receive - one datagram, without waiting; its sender's pid from SCM_CREDENTIALS */
static ssize_t
receive(int fd, char *buf, size_t size, pid_t *sender)
{
	union {
		char space[CMSG_SPACE(sizeof(struct ucred))];
		struct cmsghdr align;
	} control;
	struct iovec iov = { buf, size };
	struct msghdr msg;
	struct cmsghdr *cmsg;
	struct ucred cred;
	ssize_t n;

	memset(&msg, 0, sizeof(msg));
	msg.msg_iov = &iov;
	msg.msg_iovlen = 1;
	msg.msg_control = control.space;
	msg.msg_controllen = sizeof(control.space);
	*sender = -1;
	if ((n = recvmsg(fd, &msg, MSG_DONTWAIT | MSG_TRUNC)) < 0)
		return -1;
	for (cmsg = CMSG_FIRSTHDR(&msg); cmsg; cmsg = CMSG_NXTHDR(&msg, cmsg))
		if (cmsg->cmsg_level == SOL_SOCKET
		    && cmsg->cmsg_type == SCM_CREDENTIALS) {
			memcpy(&cred, CMSG_DATA(cmsg), sizeof(cred));
			*sender = cred.pid;
		}
	return n;
}

START_TEST(test_no_socket)
{
	unsetenv("NOTIFY_SOCKET");
	ck_assert_int_eq(notify_send("READY=1"), 0);
	setenv("NOTIFY_SOCKET", "", 1);
	ck_assert_int_eq(notify_send("READY=1"), 0);
}
END_TEST

START_TEST(test_path)
{
	char dir[] = "/tmp/check_notify.XXXXXX", path[64], buf[64];
	pid_t sender;
	ssize_t n;
	int fd, len;

	ck_assert_ptr_nonnull(mkdtemp(dir));
	len = snprintf(path, sizeof(path), "%s/notify", dir);
	ck_assert(len > 0 && (size_t)len < sizeof(path));
	fd = bind_receiver(path);
	setenv("NOTIFY_SOCKET", path, 1);
	ck_assert_int_eq(notify_send("READY=1"), 1);
	n = receive(fd, buf, sizeof(buf), &sender);
	ck_assert_int_eq(n, 7);
	ck_assert(memcmp(buf, "READY=1", 7) == 0);
	ck_assert_int_eq(sender, getpid());
	/* One datagram, nothing more. */
	ck_assert_int_eq(receive(fd, buf, sizeof(buf), &sender), -1);
	ck_assert_int_eq(errno, EAGAIN);
	close(fd);
	unlink(path);
	rmdir(dir);
}
END_TEST

START_TEST(test_abstract)
{
	char name[64], buf[64];
	const char *state = "READY=1\nSTATUS=listening";
	pid_t sender;
	ssize_t n;
	int fd, len;

	len = snprintf(name, sizeof(name), "@pollsmtpd/check_notify/%ld",
	    (long)getpid());
	ck_assert(len > 0 && (size_t)len < sizeof(name));
	fd = bind_receiver(name);
	setenv("NOTIFY_SOCKET", name, 1);
	ck_assert_int_eq(notify_send(state), 1);
	n = receive(fd, buf, sizeof(buf), &sender);
	ck_assert_int_eq(n, (ssize_t)strlen(state));
	ck_assert(memcmp(buf, state, strlen(state)) == 0);
	ck_assert_int_eq(sender, getpid());
	close(fd);
}
END_TEST

START_TEST(test_bad_names)
{
	char longname[200];

	setenv("NOTIFY_SOCKET", "run/notify", 1);
	errno = 0;
	ck_assert_int_eq(notify_send("READY=1"), -1);
	ck_assert_int_eq(errno, EINVAL);

	setenv("NOTIFY_SOCKET", "vsock:2:1234", 1);
	errno = 0;
	ck_assert_int_eq(notify_send("READY=1"), -1);
	ck_assert_int_eq(errno, EINVAL);

	memset(longname, 'x', sizeof(longname) - 1);
	longname[0] = '/';
	longname[sizeof(longname) - 1] = '\0';
	setenv("NOTIFY_SOCKET", longname, 1);
	errno = 0;
	ck_assert_int_eq(notify_send("READY=1"), -1);
	ck_assert_int_eq(errno, ENAMETOOLONG);
}
END_TEST

START_TEST(test_nobody_listens)
{
	char dir[] = "/tmp/check_notify.XXXXXX", path[64];
	int len;

	ck_assert_ptr_nonnull(mkdtemp(dir));
	len = snprintf(path, sizeof(path), "%s/none", dir);
	ck_assert(len > 0 && (size_t)len < sizeof(path));
	setenv("NOTIFY_SOCKET", path, 1);
	errno = 0;
	ck_assert_int_eq(notify_send("READY=1"), -1);
	ck_assert_int_eq(errno, ENOENT);
	rmdir(dir);
}
END_TEST

static Suite *
notify_suite(void)
{
	Suite *s = suite_create("notify");
	TCase *tc = tcase_create("sd_notify");

	tcase_add_test(tc, test_no_socket);
	tcase_add_test(tc, test_path);
	tcase_add_test(tc, test_abstract);
	tcase_add_test(tc, test_bad_names);
	tcase_add_test(tc, test_nobody_listens);
	suite_add_tcase(s, tc);
	return s;
}

int
main(void)
{
	SRunner *sr = srunner_create(notify_suite());
	int failed;

	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
