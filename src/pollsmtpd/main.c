/*
 * NAME
 *	pollsmtpd - the ESMTP receiving daemon: options, start-up, signals
 * SYNOPSIS
 *	pollsmtpd [-f] [-c FILE]
 *	pollsmtpd -t [-c FILE]
 *	pollsmtpd -V | -h
 * DESCRIPTION
 *	Start-up, in this order, so that every failure is reported to the
 *	terminal (or the service manager) before the daemon claims to run:
 *	  1. options; -t, -V and -h are answered at once;
 *	  2. the configuration (errors: EX_CONFIG);
 *	  3. the unprivileged user, when started as root (EX_NOUSER);
 *	  4. without -f: fork; the parent waits on a pipe and exits 0 when
 *	     the child is serving, or with the child's exit status;
 *	  5. the Maildir tree: root, queue, every user's Maildir; stale
 *	     tmp/ files removed; the tree given to the unprivileged user;
 *	  6. listening sockets (a port below 1024 needs root);
 *	  7. without -f: the pid file;
 *	  8. the logger process, fed through a POSIX message queue; it opens
 *	     log.file now and drops privileges itself;
 *	  9. privileges dropped (initgroups, setgid, setuid);
 *	 10. signals through a signalfd in the poll set, then serve.
 *	SIGTERM and SIGINT are blocked from the very start, so one sent
 *	during start-up is not lost: it stops the daemon as soon as it
 *	serves. SIGTERM/SIGINT: stop accepting, 421 4.3.2 to every client,
 *	exit 0, after the logger has written every record. SIGHUP: the
 *	logger reopens log.file (log rotation) and tls.certificate and
 *	tls.key are loaded again (new sessions get the new pair; a pair
 *	that does not load leaves the old one in use, with a warning).
 *	SIGCHLD: a logger that died
 *	is logged and replaced. SIGPIPE is ignored; writes to clients use
 *	MSG_NOSIGNAL anyway.
 *
 *	Until the logger process runs, records go to standard error. With
 *	an empty log.file the logger writes to standard error in the
 *	foreground (-f), and nowhere when detached.
 * DIAGNOSTICS
 *	Exit statuses from sysexits.h: 0 ok, 64 usage, 67 no such user or
 *	group, 71 an OS error (Maildir tree, listening socket, privileges),
 *	73 the pid file cannot be written, 78 a configuration error.
 *	Start-up failures are written to standard error as
 *	"pollsmtpd: message".
 */
#include "config.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <grp.h>
#include <pwd.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/signalfd.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <sysexits.h>
#include <unistd.h>

#include "conf.h"
#include "conn.h"
#include "deliver.h"
#include "event.h"
#include "log.h"
#include "logger.h"
#include "maildir.h"
#include "tls.h"

#ifndef SYSCONFDIR
#define SYSCONFDIR "/usr/local/etc"
#endif
#define MAIN_DEFAULT_CONFIG	SYSCONFDIR "/pollsmtpd/pollsmtpd.conf"
#define MAIN_PATH_MAX		4096

/* Everything the running daemon holds, released in reverse order. */
struct main_daemon {
	struct conf *conf;
	struct event_loop *loop;
	struct maildir *md;
	struct deliver *dl;
	struct conn_server *srv;
	struct logger *logger;
	int sigfd;
	int ready_fd;			/* pipe to the waiting parent, or -1 */
	int foreground;
	int pid_written;
	int stopping;
	const struct passwd *pw;	/* drop to this user, or NULL */
	gid_t gid;
	struct tls *tls;		/* tls.certificate loaded, or NULL */
};

static const char main_progname[] = "pollsmtpd";

static void main_usage(FILE *fp);
__attribute__((noreturn, format(printf, 2, 3)))
static void main_fail(int status, const char *fmt, ...);
static void main_report(const char *message, void *ctx);
static int main_check(const char *path);
static struct tls *main_load_tls(const struct conf *conf, int *status);
static void main_reload_tls(struct main_daemon *d);
static void main_block_signals(sigset_t *mask);
static void main_find_user(struct main_daemon *d);
static int main_daemonize(void);
static void main_open_maildir(struct main_daemon *d);
static int main_chown_at(int dirfd, const char *path, uid_t uid, gid_t gid);
static int main_chown_tree(const struct conf *conf, uid_t uid, gid_t gid);
static void main_raise_fd_limit(const struct conf *conf);
static void main_write_pid_file(struct main_daemon *d);
static void main_drop_privileges(const struct main_daemon *d);
static void main_signal_ready(struct event_loop *loop, int fd, int events,
    void *ctx);
static void main_start_logger(struct main_daemon *d);
static void main_logger_ready(struct event_loop *loop, int fd, int events,
    void *ctx);
static void main_idle(struct event_loop *loop, void *ctx);
static void main_detach_stdio(void);
static void main_cleanup(struct main_daemon *d);

static void
main_usage(FILE *fp)
{
	fprintf(fp,
	    "usage: %s [-f] [-c FILE]\n"
	    "       %s -t [-c FILE]\n"
	    "       %s -V | -h\n"
	    "  -f, --foreground   do not detach; log to standard error\n"
	    "  -c, --config FILE  configuration file (default %s)\n"
	    "  -t, --test         check the configuration, print problems, exit\n"
	    "  -V, --version      print the version and exit\n"
	    "  -h, --help         print this help and exit\n",
	    main_progname, main_progname, main_progname, MAIN_DEFAULT_CONFIG);
}

/* main_fail - a start-up failure: say why on stderr and exit with status */
static void
main_fail(int status, const char *fmt, ...)
{
	va_list ap;

	fprintf(stderr, "%s: ", main_progname);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
	exit(status);
}

/* main_report - conf_load() problems, already "FILE:LINE: message" */
static void
main_report(const char *message, void *ctx)
{
	(void)ctx;
	fprintf(stderr, "%s\n", message);
}

/* main_check - -t: report every problem; quiet when there is none */
static int
main_check(const char *path)
{
	struct conf *conf;

	struct tls *tls;
	int status = EX_OK;

	if ((conf = conf_load(path, main_report, NULL)) == NULL)
		return EX_CONFIG;
	tls = main_load_tls(conf, &status);
	tls_free(tls);
	conf_free(conf);
	return status;
}

/*
 * main_load_tls - the certificate and key of the configuration, or
 * NULL when none is configured (or TLS was not built in: a warning).
 * A pair that does not load is reported as "FILE:LINE: key: why" at
 * the key it is about, and *status becomes EX_CONFIG.
 */
static struct tls *
main_load_tls(const struct conf *conf, int *status)
{
	char err[TLS_ERROR_MAX];
	enum tls_what what;
	struct tls *tls;

	if (*conf->tls_certificate == '\0')
		return NULL;
	if (!tls_available()) {
		fprintf(stderr, "%s: tls.certificate: warning: built without "
		    "OpenSSL, STARTTLS is not offered\n",
		    conf->tls_certificate_at ? conf->tls_certificate_at
		    : conf->file);
		return NULL;
	}
	if ((tls = tls_new(conf->tls_certificate, conf->tls_key,
	    conf->tls_min_version, err, sizeof(err), &what)) == NULL) {
		const char *at = what == TLS_WHAT_KEY ? conf->tls_key_at
		    : conf->tls_certificate_at;

		fprintf(stderr, "%s: %s: %s\n", at != NULL ? at : conf->file,
		    what == TLS_WHAT_KEY ? "tls.key" : "tls.certificate", err);
		*status = EX_CONFIG;
	}
	return tls;
}

/* main_reload_tls - SIGHUP: the same files again; the old pair stays on failure */
static void
main_reload_tls(struct main_daemon *d)
{
	char err[TLS_ERROR_MAX], about[TLS_DESCRIBE_MAX];
	enum tls_what what;

	if (d->tls == NULL)
		return;
	if (tls_reload(d->tls, err, sizeof(err), &what) < 0) {
		log_warnx("-", "TLS reload failed, the old certificate stays in "
		    "use: %s: %s", what == TLS_WHAT_KEY ? "tls.key"
		    : "tls.certificate", err);
		return;
	}
	if (tls_describe(d->tls, about, sizeof(about)) < 0)
		snprintf(about, sizeof(about), "?");
	log_info("-", "TLS certificate reloaded: %s", about);
}

/*
 * main_block_signals - the signals the daemon reads from its signalfd
 * are blocked at once, so that one sent during start-up waits for the
 * loop instead of killing the process half-way.
 */
static void
main_block_signals(sigset_t *mask)
{
	struct sigaction sa;

	sigemptyset(mask);
	sigaddset(mask, SIGTERM);
	sigaddset(mask, SIGINT);
	sigaddset(mask, SIGHUP);
	sigaddset(mask, SIGCHLD);
	if (sigprocmask(SIG_BLOCK, mask, NULL) < 0)
		main_fail(EX_OSERR, "sigprocmask: %s", strerror(errno));
	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = SIG_IGN;
	sigemptyset(&sa.sa_mask);
	if (sigaction(SIGPIPE, &sa, NULL) < 0)
		main_fail(EX_OSERR, "sigaction: %s", strerror(errno));
}

/*
 * main_find_user - started as root, find the unprivileged user (and
 * group) to run as after start-up. The daemon refuses to serve as
 * root: a bug in the code that reads the network must not own the host.
 */
static void
main_find_user(struct main_daemon *d)
{
	const struct conf *conf = d->conf;
	const struct group *gr;

	d->pw = NULL;
	if (geteuid() != 0)
		return;
	if (conf->user == NULL || *conf->user == '\0')
		main_fail(EX_CONFIG, "%s: server.user is empty: refusing to "
		    "run as root; name an unprivileged user", conf->file);
	errno = 0;
	if ((d->pw = getpwnam(conf->user)) == NULL)
		main_fail(EX_NOUSER, "%s: server.user \"%s\": %s", conf->file,
		    conf->user, errno ? strerror(errno) : "no such user");
	if (d->pw->pw_uid == 0)
		main_fail(EX_CONFIG, "%s: server.user \"%s\" is root: refusing "
		    "to run as root; name an unprivileged user", conf->file,
		    conf->user);
	d->gid = d->pw->pw_gid;
	if (conf->group != NULL && *conf->group != '\0') {
		errno = 0;
		if ((gr = getgrnam(conf->group)) == NULL)
			main_fail(EX_NOUSER, "%s: server.group \"%s\": %s",
			    conf->file, conf->group,
			    errno ? strerror(errno) : "no such group");
		d->gid = gr->gr_gid;
	}
	if (d->gid == 0)
		main_fail(EX_CONFIG, "%s: server.group \"%s\" is root's group: "
		    "refusing to run with it", conf->file, conf->group);
}

/*
 * main_daemonize - fork; the parent waits until the child is serving.
 *
 * The child writes one byte to the pipe when it serves; if it exits
 * first, the parent sees the end of the pipe and exits with the
 * child's status, so "pollsmtpd && echo started" tells the truth.
 * Returns, in the child, the pipe's write end.
 */
static int
main_daemonize(void)
{
	int pfd[2], status;
	pid_t pid;
	ssize_t n;
	char c;

	if (pipe2(pfd, O_CLOEXEC) < 0)
		main_fail(EX_OSERR, "pipe: %s", strerror(errno));
	fflush(NULL);
	if ((pid = fork()) < 0)
		main_fail(EX_OSERR, "fork: %s", strerror(errno));
	if (pid > 0) {
		close(pfd[1]);
		do
			n = read(pfd[0], &c, 1);
		while (n < 0 && errno == EINTR);
		if (n == 1)
			_exit(EX_OK);
		while (waitpid(pid, &status, 0) < 0)
			if (errno != EINTR)
				_exit(EX_OSERR);
		if (WIFEXITED(status))
			_exit(WEXITSTATUS(status));
		fprintf(stderr, "%s: the daemon died of signal %d\n",
		    main_progname, WTERMSIG(status));
		_exit(EX_OSERR);
	}
	close(pfd[0]);
	if (setsid() < 0)
		main_fail(EX_OSERR, "setsid: %s", strerror(errno));
	return pfd[1];
}

static void
main_open_maildir(struct main_daemon *d)
{
	const struct conf *conf = d->conf;
	size_t i;
	int n;

	if ((d->md = maildir_open(conf->maildir_path, conf->hostname,
	    conf->maildir_fsync)) == NULL)
		main_fail(EX_OSERR, "cannot open the Maildir tree %s: %s",
		    conf->maildir_path, strerror(errno));
	for (i = 0; i < conf->nusers; i++)
		if (maildir_add_user(d->md, conf->users[i]) < 0)
			main_fail(EX_OSERR, "cannot make the Maildir %s/%s: %s",
			    conf->maildir_path, conf->users[i],
			    strerror(errno));
	if ((n = maildir_clean_tmp(d->md)) < 0)
		main_fail(EX_OSERR, "cannot clean tmp/ under %s: %s",
		    conf->maildir_path, strerror(errno));
	if (n > 0)
		log_info("-", "removed %d stale file%s from tmp/", n,
		    n == 1 ? "" : "s");
}

/* main_chown_at - chown dirfd/path (never through a symbolic link) */
static int
main_chown_at(int dirfd, const char *path, uid_t uid, gid_t gid)
{
	struct stat st;

	if (fstatat(dirfd, path, &st, AT_SYMLINK_NOFOLLOW) < 0)
		return errno == ENOENT ? 0 : -1;
	if (st.st_uid == uid && st.st_gid == gid)
		return 0;
	return fchownat(dirfd, path, uid, gid, AT_SYMLINK_NOFOLLOW);
}

/*
 * main_chown_tree - give the directories the daemon writes into to the
 * user it will run as: the root, every user's Maildir, the queue and
 * its domain directories. Files already stored keep their owner.
 */
static int
main_chown_tree(const struct conf *conf, uid_t uid, gid_t gid)
{
	static const char *const sub[] = { "", "/tmp", "/new", "/cur" };
	char path[MAIN_PATH_MAX];
	struct dirent *de;
	DIR *dir = NULL;
	int rootfd, qfd = -1, rc = -1, n;
	size_t i, k;

	if ((rootfd = open(conf->maildir_path,
	    O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC)) < 0)
		return -1;
	if (main_chown_at(rootfd, ".", uid, gid) < 0
	    || main_chown_at(rootfd, MAILDIR_QUEUE_DIR, uid, gid) < 0
	    || main_chown_at(rootfd, MAILDIR_QUEUE_DIR "/.tmp", uid, gid) < 0)
		goto fail;
	for (i = 0; i < conf->nusers; i++) {
		for (k = 0; k < sizeof(sub) / sizeof(sub[0]); k++) {
			n = snprintf(path, sizeof(path), "%s%s",
			    conf->users[i], sub[k]);
			if (n < 0 || (size_t)n >= sizeof(path)) {
				errno = ENAMETOOLONG;
				goto fail;
			}
			if (main_chown_at(rootfd, path, uid, gid) < 0)
				goto fail;
		}
	}

	if ((qfd = openat(rootfd, MAILDIR_QUEUE_DIR,
	    O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC)) < 0)
		goto fail;
	if ((dir = fdopendir(qfd)) == NULL)
		goto fail;
	qfd = -1;			/* dir owns it now */
	while ((errno = 0, de = readdir(dir)) != NULL) {
		if (de->d_name[0] == '.')
			continue;
		n = snprintf(path, sizeof(path), "%s/error", de->d_name);
		if (n < 0 || (size_t)n >= sizeof(path))
			continue;
		if (main_chown_at(dirfd(dir), de->d_name, uid, gid) < 0
		    || main_chown_at(dirfd(dir), path, uid, gid) < 0)
			goto fail;
	}
	if (errno != 0)
		goto fail;
	rc = 0;

fail:
	n = errno;
	if (dir != NULL)
		closedir(dir);
	if (qfd >= 0)
		close(qfd);
	close(rootfd);
	errno = n;
	return rc;
}

/*
 * main_raise_fd_limit - raise the soft open file limit towards what
 * conn_descriptors_wanted() says the configuration needs, as far as the
 * hard limit allows; conn_budget() later serves fewer clients when it
 * falls short.
 */
static void
main_raise_fd_limit(const struct conf *conf)
{
	struct rlimit rl;
	rlim_t want = (rlim_t)conn_descriptors_wanted(conf);

	if (getrlimit(RLIMIT_NOFILE, &rl) < 0 || rl.rlim_cur >= want)
		return;
	rl.rlim_cur = rl.rlim_max == RLIM_INFINITY || rl.rlim_max > want
	    ? want : rl.rlim_max;
	if (setrlimit(RLIMIT_NOFILE, &rl) < 0 || rl.rlim_cur < want)
		log_warnx("-", "open file limit %lu is below the %lu that "
		    "max_connections = %ld needs", (unsigned long)rl.rlim_cur,
		    (unsigned long)want, conf->max_connections);
}

static void
main_write_pid_file(struct main_daemon *d)
{
	const char *path = d->conf->pid_file;
	char text[32];
	int fd, n;

	if (path == NULL || *path == '\0')
		return;
	n = snprintf(text, sizeof(text), "%ld\n", (long)getpid());
	if (n < 0 || (size_t)n >= sizeof(text))
		main_fail(EX_SOFTWARE, "pid does not fit");
	if ((fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_NOFOLLOW
	    | O_CLOEXEC, 0644)) < 0)
		main_fail(EX_CANTCREAT, "cannot write the pid file %s: %s",
		    path, strerror(errno));
	if (fchmod(fd, 0644) < 0 || write(fd, text, (size_t)n) != n
	    || close(fd) < 0) {
		unlink(path);
		main_fail(EX_CANTCREAT, "cannot write the pid file %s: %s",
		    path, strerror(errno));
	}
	d->pid_written = 1;
}

static void
main_drop_privileges(const struct main_daemon *d)
{
	const struct passwd *pw = d->pw;

	if (pw == NULL)
		return;
	if (initgroups(pw->pw_name, d->gid) < 0 || setgid(d->gid) < 0
	    || setuid(pw->pw_uid) < 0)
		main_fail(EX_OSERR, "cannot run as %s: %s", pw->pw_name,
		    strerror(errno));
	if (pw->pw_uid != 0 && setuid(0) == 0)
		main_fail(EX_OSERR, "could regain root after dropping it");
	log_info("-", "running as %s (uid %ld, gid %ld)", pw->pw_name,
	    (long)pw->pw_uid, (long)d->gid);
}

/* main_signal_ready - signals, read from the signalfd by the loop */
static void
main_signal_ready(struct event_loop *loop, int fd, int events, void *ctx)
{
	struct main_daemon *d = ctx;
	struct signalfd_siginfo si;
	ssize_t n;

	while ((n = read(fd, &si, sizeof(si))) == (ssize_t)sizeof(si)) {
		switch (si.ssi_signo) {
		case SIGTERM:
		case SIGINT:
			if (d->stopping)
				break;
			d->stopping = 1;
			log_info("-", "stopping on %s (%zu clients)",
			    si.ssi_signo == SIGTERM ? "SIGTERM" : "SIGINT",
			    conn_count(d->srv));
			conn_shutdown(d->srv);
			event_loop_stop(loop);
			break;
		case SIGHUP:
			logger_reopen(d->logger);
			main_reload_tls(d);
			break;
		case SIGCHLD:
			logger_reap(d->logger);
			break;
		default:
			break;
		}
	}
	if (n < 0 && errno != EAGAIN && errno != EINTR)
		log_warn("-", "signalfd");
}

/*
 * main_start_logger - fork the logger while still privileged, so that it
 * can open log.file wherever the administrator put it; it drops to the
 * daemon's user itself.
 */
static void
main_start_logger(struct main_daemon *d)
{
	const char *path = d->conf->log_file;

	if (path == NULL || *path == '\0')
		path = d->foreground ? "" : "/dev/null";
	d->logger = logger_start(path, d->pw ? d->pw->pw_uid : (uid_t)-1,
	    d->gid, d->pw ? d->pw->pw_name : NULL);
	if (d->logger == NULL)
		main_fail(EX_CANTCREAT, "cannot start the logger for %s: %s",
		    *path ? path : "standard error", strerror(errno));
	if (event_add(d->loop, logger_fd(d->logger), 0, main_logger_ready,
	    d) < 0)
		main_fail(EX_OSERR, "event_add: %s", strerror(errno));
}

/* main_logger_ready - the log queue has room again: send what waits */
static void
main_logger_ready(struct event_loop *loop, int fd, int events, void *ctx)
{
	struct main_daemon *d = ctx;

	(void)loop;
	(void)fd;
	(void)events;
	logger_flush(d->logger);
}

/*
 * main_idle - before each poll(): the records of this loop iteration go
 * to the logger together; those that found the queue full wait for it to
 * poll writable (otherwise it is not watched at all).
 */
static void
main_idle(struct event_loop *loop, void *ctx)
{
	struct main_daemon *d = ctx;

	if (d->logger == NULL)
		return;
	logger_flush(d->logger);
	event_set(loop, logger_fd(d->logger),
	    logger_wants_write(d->logger) ? EVENT_WRITE : 0);
}

/*
 * main_detach_stdio - the detached daemon lets go of the terminal:
 * stdin, stdout and stderr to /dev/null (records go to the logger).
 */
static void
main_detach_stdio(void)
{
	int null;

	if ((null = open("/dev/null", O_RDWR | O_CLOEXEC)) < 0)
		main_fail(EX_OSERR, "/dev/null: %s", strerror(errno));
	if (dup2(null, STDIN_FILENO) < 0 || dup2(null, STDOUT_FILENO) < 0
	    || dup2(null, STDERR_FILENO) < 0)
		main_fail(EX_OSERR, "dup2: %s", strerror(errno));
	close(null);
}

static void
main_cleanup(struct main_daemon *d)
{
	conn_server_free(d->srv);
	tls_free(d->tls);
	deliver_free(d->dl);
	maildir_close(d->md);
	if (d->sigfd >= 0) {
		event_del(d->loop, d->sigfd);
		close(d->sigfd);
	}
	event_loop_free(d->loop);
	/* After dropping root this may fail; a stale pid file is harmless. */
	if (d->pid_written)
		(void)unlink(d->conf->pid_file);
	conf_free(d->conf);
}

int
main(int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "foreground", no_argument, NULL, 'f' },
		{ "config", required_argument, NULL, 'c' },
		{ "test", no_argument, NULL, 't' },
		{ "version", no_argument, NULL, 'V' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	struct main_daemon d;
	const char *config = MAIN_DEFAULT_CONFIG, *failed;
	int opt, test = 0, version = 0, help = 0, status = EX_OK;
	sigset_t mask;

	memset(&d, 0, sizeof(d));
	d.sigfd = -1;
	d.ready_fd = -1;
	while ((opt = getopt_long(argc, argv, "fc:tVh", longopts, NULL)) != -1) {
		switch (opt) {
		case 'f':
			d.foreground = 1;
			break;
		case 'c':
			config = optarg;
			break;
		case 't':
			test = 1;
			break;
		case 'V':
			version = 1;
			break;
		case 'h':
			help = 1;
			break;
		default:
			main_usage(stderr);
			return EX_USAGE;
		}
	}
	if (optind < argc) {
		fprintf(stderr, "%s: unexpected argument \"%s\"\n",
		    main_progname, argv[optind]);
		main_usage(stderr);
		return EX_USAGE;
	}
	if (help) {
		main_usage(stdout);
		return EX_OK;
	}
	if (version) {
		printf("%s %s\n", main_progname, PACKAGE_VERSION);
		return EX_OK;
	}
	if (test)
		return main_check(config);

	main_block_signals(&mask);
	umask(077);
	if ((d.conf = conf_load(config, main_report, NULL)) == NULL)
		return EX_CONFIG;
	log_init(main_progname, d.conf->debug);
	/* Read while still root: the key may be readable by root alone. */
	d.tls = main_load_tls(d.conf, &status);
	if (status != EX_OK) {
		conf_free(d.conf);
		return status;
	}
	main_find_user(&d);
	if (!d.foreground)
		d.ready_fd = main_daemonize();

	main_raise_fd_limit(d.conf);
	if ((d.loop = event_loop_new()) == NULL)
		main_fail(EX_OSERR, "out of memory");
	main_open_maildir(&d);
	if (d.pw != NULL && main_chown_tree(d.conf, d.pw->pw_uid, d.gid) < 0)
		main_fail(EX_OSERR, "cannot give %s to %s: %s",
		    d.conf->maildir_path, d.pw->pw_name, strerror(errno));
	if ((d.dl = deliver_new(d.conf, d.md)) == NULL
	    || (d.srv = conn_server_new(d.loop, d.conf, d.dl)) == NULL)
		main_fail(EX_OSERR, "out of memory");
	conn_server_set_tls(d.srv, d.tls);
	if (conn_listen(d.srv, &failed) < 0)
		main_fail(EX_OSERR, "cannot listen on %s: %s",
		    failed ? failed : "?", strerror(errno));
	if (!d.foreground)
		main_write_pid_file(&d);
	main_start_logger(&d);
	if (conn_budget(d.srv) < 0)
		main_fail(EX_OSERR, "the open file limit cannot serve a "
		    "client and store its messages: %s", strerror(errno));
	event_set_idle(d.loop, main_idle, &d);
	main_drop_privileges(&d);

	if ((d.sigfd = signalfd(-1, &mask, SFD_NONBLOCK | SFD_CLOEXEC)) < 0
	    || event_add(d.loop, d.sigfd, EVENT_READ, main_signal_ready,
		&d) < 0)
		main_fail(EX_OSERR, "signalfd: %s", strerror(errno));

	if (!d.foreground) {
		if (chdir("/") < 0)
			main_fail(EX_OSERR, "chdir /: %s", strerror(errno));
		main_detach_stdio();
	}
	log_info("-", "%s %s started (pid %ld)", main_progname,
	    PACKAGE_VERSION, (long)getpid());
	if (d.tls != NULL) {
		char about[TLS_DESCRIBE_MAX];

		if (tls_describe(d.tls, about, sizeof(about)) == 0)
			log_info("-", "TLS certificate: %s", about);
	}
	if (d.ready_fd >= 0) {
		/* Serving: the waiting parent may exit 0 now. */
		if (write(d.ready_fd, "", 1) != 1)
			log_warn("-", "cannot tell the parent we are ready");
		close(d.ready_fd);
		d.ready_fd = -1;
	}

	if (event_loop_run(d.loop) < 0) {
		log_err("-", "poll");
		status = EX_OSERR;
	}
	log_info("-", "%s stopped", main_progname);
	event_del(d.loop, logger_fd(d.logger));
	logger_stop(d.logger);
	d.logger = NULL;
	main_cleanup(&d);
	return status;
}
