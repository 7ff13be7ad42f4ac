/*
 * NAME
 *	notify - tell the service manager how the daemon is doing (sd_notify)
 * DESCRIPTION
 *	The sd_notify protocol is a datagram of "KEY=VALUE" lines sent to
 *	an AF_UNIX socket; systemd documents it as a stable interface, so
 *	it is written here in a few lines rather than linking libsystemd.
 *	See notify.h.
 */
#include "config.h"

#include <errno.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "notify.h"

int
notify_send(const char *state)
{
	struct sockaddr_un sun;
	const char *name = getenv("NOTIFY_SOCKET");
	size_t len, statelen = strlen(state);
	socklen_t addrlen;
	ssize_t n;
	int fd, saved;

	if (name == NULL || *name == '\0')
		return 0;
	if (*name != '/' && *name != '@') {
		errno = EINVAL;
		return -1;
	}
	len = strlen(name);
	if (len >= sizeof(sun.sun_path)) {
		errno = ENAMETOOLONG;
		return -1;
	}
	memset(&sun, 0, sizeof(sun));
	sun.sun_family = AF_UNIX;
	memcpy(sun.sun_path, name, len);
	if (*name == '@') {
		/* Abstract: a leading NUL, and the length says where it ends. */
		sun.sun_path[0] = '\0';
		addrlen = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + len);
	} else
		addrlen = (socklen_t)sizeof(sun);

	if ((fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0)) < 0)
		return -1;
	do
		n = sendto(fd, state, statelen, MSG_NOSIGNAL,
		    (const struct sockaddr *)&sun, addrlen);
	while (n < 0 && errno == EINTR);
	saved = errno;
	close(fd);
	if (n < 0) {
		errno = saved;
		return -1;
	}
	if ((size_t)n != statelen) {
		errno = EMSGSIZE;
		return -1;
	}
	return 1;
}
