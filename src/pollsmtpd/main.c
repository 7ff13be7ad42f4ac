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
 *	  1. options; -V and -h are answered at once;
 *	  2. the configuration (errors: EX_CONFIG);
 *	  3. the checks -t makes too (main_preflight): the unprivileged
 *	     user and group when started as root (EX_NOUSER; root itself:
 *	     EX_CONFIG), a host name that fits Maildir names (EX_CONFIG),
 *	     the directories of log.file and, detached, of the pid file
 *	     (EX_CANTCREAT); -t stops here, with every problem named by
 *	     its key's FILE:LINE, and also checks that the Maildir root can
 *	     be made and written;
 *	  4. without -f: fork; the parent waits on a pipe and exits 0 when
 *	     the child is serving, or with the child's exit status;
 *	  5. the Maildir tree: root and queue opened, then the lock of this
 *	     host (root/.lock.HOST; held: EX_TEMPFAIL, and nothing is
 *	     touched), every user's Maildir, the tree given to the
 *	     unprivileged user, walked from the root descriptor without
 *	     following a symbolic link (one where a directory belongs:
 *	     EX_OSERR, named, nothing outside the tree touched);
 *	  6. listening sockets (a port below 1024 needs root);
 *	  7. only now, locked and bound, this host's stale tmp/ files are
 *	     removed;
 *	  8. without -f: the pid file, locked (flock) for as long as the
 *	     daemon runs;
 *	  9. the logger process, fed through a POSIX message queue; it opens
 *	     log.file now and drops privileges itself; the start-up records
 *	     made so far are written to log.file too;
 *	 10. privileges dropped (initgroups, setgid, setuid);
 *	 11. signals through a signalfd in the poll set;
 *	 12. the delivery agent (delivery.enabled); READY=1 to
 *	     $NOTIFY_SOCKET when systemd asked for it (notify.h); serve.
 *	SIGTERM and SIGINT are blocked from the very start, so one sent
 *	during start-up is not lost: it stops the daemon as soon as it
 *	serves. SIGTERM/SIGINT: stop accepting, 421 4.3.2 to every client,
 *	stop the delivery agent, exit 0, after the logger has written every
 *	record. SIGHUP: the logger reopens log.file (log rotation), and
 *	tls.certificate and tls.key are loaded again (new sessions get the
 *	new pair; a pair that does not load leaves the old one in use, with
 *	a warning). SIGCHLD:
 *	a logger or delivery agent that died is logged and replaced.
 *	SIGUSR1: the delivery agent tries every deferred letter now.
 *	SIGPIPE is ignored; writes to clients use MSG_NOSIGNAL anyway.
 *
 *	The pid file goes when the daemon exits, and when a start fails
 *	after writing it. After dropping root the daemon can remove it only
 *	if server.user may write its directory (a /run/pollsmtpd/ owned by
 *	that user); otherwise it empties the file, so no stale pid is left
 *	for a script to signal. The flock() held on it tells a live daemon
 *	from a stale file whatever killed the daemon (pkill -F FILE -L).
 *
 *	Until the logger process runs, records go to standard error (and
 *	are kept, to be written to log.file when the logger starts). With
 *	an empty log.file the logger writes to standard error in the
 *	foreground (-f), and nowhere when detached.
 * DIAGNOSTICS
 *	Exit statuses from sysexits.h: 0 ok, 64 usage, 67 no such user or
 *	group, 71 an OS error (Maildir tree, a symbolic link in it,
 *	listening socket, privileges), 73 the pid file or log.file cannot
 *	be written (or the logger cannot start), 75 another pollsmtpd holds
 *	this host's lock on the tree, 78 a configuration error (-t: any
 *	problem found). Start-up failures are written to standard error as
 *	"pollsmtpd: message", and to the log once the logger runs.
 */
#include "config.h"
#include "tls.h"

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
#include <sys/file.h>
#include <sys/resource.h>
#include <sys/signalfd.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <sysexits.h>
#include <unistd.h>

#include "buf.h"
#include "agent.h"
#include "conf.h"
#include "conn.h"
#include "deliver.h"
#include "event.h"
#include "log.h"
#include "logger.h"
#include "maildir.h"
#include "notify.h"

#ifndef SYSCONFDIR
#define SYSCONFDIR "/usr/local/etc"
#endif
#define MAIN_DEFAULT_CONFIG	SYSCONFDIR "/pollsmtpd/pollsmtpd.conf"
#define MAIN_PATH_MAX		4096
#define MAIN_EARLY_LOG_MAX	(64 * 1024)	/* start-up records kept */

/* Everything the running daemon holds, released in reverse order. */
struct main_daemon {
	struct conf *conf;
	struct event_loop *loop;
	struct maildir *md;
	struct deliver *dl;
	struct conn_server *srv;
	struct logger *logger;
	struct event_timer *logger_timer;	/* a logger's replacement is due */
	struct agent *agent;		/* the delivery agent, or NULL */
	int sigfd;
	int ready_fd;			/* pipe to the waiting parent, or -1 */
	int foreground;
	int pid_written;
	int pid_fd;			/* the pid file, locked, or -1 */
	int stopping;
	const struct passwd *pw;	/* drop to this user, or NULL */
	gid_t gid;
	struct tls *tls;		/* tls.certificate loaded, or NULL */
};

static const char main_progname[] = "pollsmtpd";

/*
 * File scope, because main_fail() must undo a start half-way done (the
 * pid file, the logger) from wherever start-up fails, and the early log
 * sink has no other context than the records of start-up it keeps.
 */
static struct tls *main_load_tls(const struct conf *conf, int *status);
static void main_reload_tls(struct main_daemon *d);
static struct main_daemon *main_running;
static struct buf *main_early_log;

static void main_usage(FILE *fp);
__attribute__((noreturn, format(printf, 2, 3)))
static void main_fail(int status, const char *fmt, ...);
static void main_report(const char *message, void *ctx);
static void main_problem(int *status, int code, const struct conf *conf,
    const char *key, const char *fmt, ...)
    __attribute__((format(printf, 5, 6)));
static int main_check(const char *path);
static int main_preflight(struct main_daemon *d, int test);
static int main_check_user(struct main_daemon *d, int test);
static int main_dir_of(const char *path, char *dir, size_t size);
static void main_check_dir_of(int *status, int code, const struct conf *conf,
    const char *key, const char *path, const char *what);
static void main_check_maildir(int *status, const struct conf *conf);
static void main_block_signals(sigset_t *mask);
static int main_daemonize(void);
static void main_open_maildir(struct main_daemon *d);
static void main_tree_fail(const struct conf *conf, const char *what,
    const char *rel, int err) __attribute__((noreturn));
static void main_clean_tmp(struct main_daemon *d);
static void main_raise_fd_limit(const struct conf *conf);
static void main_write_pid_file(struct main_daemon *d);
static void main_remove_pid_file(struct main_daemon *d);
static void main_early_sink(enum log_level level, const char *record,
    size_t len, void *ctx);
static void main_drop_privileges(const struct main_daemon *d);
static void main_signal_ready(struct event_loop *loop, int fd, int events,
    void *ctx);
static void main_start_logger(struct main_daemon *d);
static void main_logger_ready(struct event_loop *loop, int fd, int events,
    void *ctx);
static void main_logger_due(struct event_loop *loop, struct event_timer *t,
    void *ctx);
static void main_idle(struct event_loop *loop, void *ctx);
static void main_start_agent(struct main_daemon *d);
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

/*
 * main_fail - a start-up failure: say why on stderr (and in the log when
 * the logger runs), remove the pid file written, exit with status.
 */
static void
main_fail(int status, const char *fmt, ...)
{
	struct main_daemon *d = main_running;
	char text[LOG_RECORD_MAX];
	va_list ap;

	va_start(ap, fmt);
	if (vsnprintf(text, sizeof(text), fmt, ap) < 0)
		text[0] = '\0';
	va_end(ap);
	fprintf(stderr, "%s: %s\n", main_progname, text);
	fflush(stderr);
	if (d != NULL) {
		main_remove_pid_file(d);
		if (d->logger != NULL) {
			if (d->conf->log_file != NULL && *d->conf->log_file)
				log_errx("-", "not started: %s", text);
			logger_stop(d->logger);
			d->logger = NULL;
		}
	}
	exit(status);
}

/*
 * main_problem - one problem found by main_preflight(): "FILE:LINE: key:
 * message" on stderr, and *status set to code unless a problem was
 * already found (the first one decides the exit status).
 */
static void
main_problem(int *status, int code, const struct conf *conf, const char *key,
    const char *fmt, ...)
{
	char where[MAIN_PATH_MAX + 16], text[LOG_RECORD_MAX];
	va_list ap;

	va_start(ap, fmt);
	if (vsnprintf(text, sizeof(text), fmt, ap) < 0)
		text[0] = '\0';
	va_end(ap);
	fprintf(stderr, "%s: %s: %s\n", conf_where(conf, key, where,
	    sizeof(where)), key, text);
	if (*status == EX_OK)
		*status = code;
}

/* main_report - conf_load() problems, already "FILE:LINE: message" */
static void
main_report(const char *message, void *ctx)
{
	(void)ctx;
	fprintf(stderr, "%s\n", message);
}

/*
 * main_check - -t: report every problem start-up would find (short of
 * binding the ports), each as FILE:LINE; one line on success.
 */
static int
main_check(const char *path)
{
	struct main_daemon d;
	int status;

	struct tls *tls;
	int tls_status = EX_OK;

	memset(&d, 0, sizeof(d));
	if ((d.conf = conf_load(path, main_report, NULL)) == NULL)
		return EX_CONFIG;
	status = main_preflight(&d, 1);
	/* The certificate and key load, and belong together. */
	tls = main_load_tls(d.conf, &tls_status);
	tls_free(tls);
	if (status == EX_OK)
		status = tls_status;
	if (status == EX_OK)
		printf("%s: configuration file %s test is successful\n",
		    main_progname, path);
	conf_free(d.conf);
	return status == EX_OK ? EX_OK : EX_CONFIG;
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
 * main_preflight - what the configuration file cannot say alone: the
 * user and group, the host name's length, the directories of the log
 * file and the pid file, and (-t only) the Maildir root. Each problem is
 * reported; returns EX_OK or the exit status of the first one. At
 * start-up, d->pw and d->gid are set (to the user to drop to, when
 * started as root).
 */
static int
main_preflight(struct main_daemon *d, int test)
{
	const struct conf *conf = d->conf;
	char q[LOG_RECORD_MAX];
	int status = EX_OK;

	status = main_check_user(d, test);
	if (!maildir_hostname_ok(conf->hostname)) {
		log_escape(q, sizeof(q), conf->hostname,
		    strlen(conf->hostname));
		main_problem(&status, EX_CONFIG, conf, "hostname",
		    "\"%s\"%s is too long for Maildir file names: at most %d "
		    "bytes (':', '/' and bytes outside '!'..'~' count four)",
		    q, conf_is_default(conf, "hostname")
		    ? " (the default, from gethostname())" : "",
		    MAILDIR_HOST_MAX);
	}
	if (conf->log_file != NULL && *conf->log_file != '\0')
		main_check_dir_of(&status, EX_CANTCREAT, conf, "log.file",
		    conf->log_file, "the log file");
	if ((test || !d->foreground) && conf->pid_file != NULL
	    && *conf->pid_file != '\0')
		main_check_dir_of(&status, EX_CANTCREAT, conf, "server.pid_file",
		    conf->pid_file, "the pid file");
	if (test)
		main_check_maildir(&status, conf);
	return status;
}

/*
 * main_check_user - started as root (or with -t, whoever runs it), the
 * unprivileged user and group to run as after start-up must exist and
 * not be root: a bug in the code that reads the network must not own
 * the host.
 */
static int
main_check_user(struct main_daemon *d, int test)
{
	const struct conf *conf = d->conf;
	const struct passwd *pw;
	const struct group *gr;
	int status = EX_OK;

	d->pw = NULL;
	if (geteuid() != 0 && !test)
		return EX_OK;
	if (conf->user == NULL || *conf->user == '\0') {
		main_problem(&status, EX_CONFIG, conf, "server.user", "empty: "
		    "refusing to run as root; name an unprivileged user");
		return status;
	}
	errno = 0;
	if ((pw = getpwnam(conf->user)) == NULL) {
		main_problem(&status, EX_NOUSER, conf, "server.user",
		    "\"%s\": %s", conf->user,
		    errno ? strerror(errno) : "no such user");
		return status;
	}
	if (pw->pw_uid == 0) {
		main_problem(&status, EX_CONFIG, conf, "server.user",
		    "\"%s\" is root: refusing to run as root; name an "
		    "unprivileged user", conf->user);
		return status;
	}
	d->gid = pw->pw_gid;
	if (conf->group != NULL && *conf->group != '\0') {
		errno = 0;
		if ((gr = getgrnam(conf->group)) == NULL) {
			main_problem(&status, EX_NOUSER, conf, "server.group",
			    "\"%s\": %s", conf->group,
			    errno ? strerror(errno) : "no such group");
			return status;
		}
		d->gid = gr->gr_gid;
	}
	if (d->gid == 0) {
		main_problem(&status, EX_CONFIG, conf, conf->group != NULL
		    && *conf->group != '\0' ? "server.group" : "server.user",
		    "\"%s\" is root's group: refusing to run with it",
		    conf->group != NULL && *conf->group != '\0' ? conf->group
		    : conf->user);
		return status;
	}
	if (geteuid() == 0)
		d->pw = pw;
	return EX_OK;
}

/* main_dir_of - the directory part of an absolute path ("/" for "/x") */
static int
main_dir_of(const char *path, char *dir, size_t size)
{
	const char *slash = strrchr(path, '/');
	size_t len;

	if (slash == NULL)
		return -1;
	len = slash == path ? 1 : (size_t)(slash - path);
	if (len >= size)
		return -1;
	memcpy(dir, path, len);
	dir[len] = '\0';
	return 0;
}

/* main_check_dir_of - the directory path will be made in must exist */
static void
main_check_dir_of(int *status, int code, const struct conf *conf,
    const char *key, const char *path, const char *what)
{
	char dir[MAIN_PATH_MAX];
	struct stat st;

	if (main_dir_of(path, dir, sizeof(dir)) < 0) {
		main_problem(status, code, conf, key, "\"%s\": not a path that "
		    "fits", path);
		return;
	}
	if (stat(dir, &st) < 0)
		main_problem(status, code, conf, key, "the directory %s of %s "
		    "%s: %s", dir, what, path, strerror(errno));
	else if (!S_ISDIR(st.st_mode))
		main_problem(status, code, conf, key, "%s (the directory of %s "
		    "%s) is not a directory", dir, what, path);
	else if (stat(path, &st) == 0 && S_ISDIR(st.st_mode))
		main_problem(status, code, conf, key, "%s is a directory, not "
		    "%s", path, what);
}

/*
 * main_check_maildir - -t: the Maildir root exists and can be written
 * (started as root the daemon gives it to server.user itself), or it can
 * be made: start-up makes only the last directory, so its parent must
 * exist, and mkdir() is tried for real (and undone), since only the file
 * system knows (a /proc/foo cannot be made, whatever the modes say).
 */
static void
main_check_maildir(int *status, const struct conf *conf)
{
	const char *path = conf->maildir_path;
	const char *key = "application.maildir.path";
	char dir[MAIN_PATH_MAX];
	struct stat st;

	if (stat(path, &st) == 0) {
		if (!S_ISDIR(st.st_mode))
			main_problem(status, EX_CONFIG, conf, key,
			    "%s is not a directory", path);
		else if (geteuid() != 0 && access(path, W_OK | X_OK) < 0)
			main_problem(status, EX_CONFIG, conf, key,
			    "%s cannot be written by %s: %s", path,
			    conf->user, strerror(errno));
		return;
	}
	if (errno != ENOENT) {
		main_problem(status, EX_CONFIG, conf, key, "%s: %s", path,
		    strerror(errno));
		return;
	}
	if (main_dir_of(path, dir, sizeof(dir)) < 0 || stat(dir, &st) < 0) {
		main_problem(status, EX_CONFIG, conf, key, "%s cannot be made: "
		    "its parent %s does not exist (only the last directory is "
		    "made)", path, *dir ? dir : "?");
		return;
	}
	if (mkdir(path, 0700) < 0) {
		main_problem(status, EX_CONFIG, conf, key, "%s cannot be made: "
		    "%s", path, strerror(errno));
		return;
	}
	(void)rmdir(path);
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
	sigaddset(mask, SIGUSR1);
	if (sigprocmask(SIG_BLOCK, mask, NULL) < 0)
		main_fail(EX_OSERR, "sigprocmask: %s", strerror(errno));
	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = SIG_IGN;
	sigemptyset(&sa.sa_mask);
	if (sigaction(SIGPIPE, &sa, NULL) < 0)
		main_fail(EX_OSERR, "sigaction: %s", strerror(errno));
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

/*
 * main_open_maildir - the tree, locked for this host before anything in
 * it is changed; made, given to the unprivileged user (when started as
 * root) without ever following a symbolic link out of it.
 */
static void
main_open_maildir(struct main_daemon *d)
{
	const struct conf *conf = d->conf;
	char bad[MAIN_PATH_MAX];
	size_t i;

	if ((d->md = maildir_open(conf->maildir_path, conf->hostname,
	    conf->maildir_fsync)) == NULL)
		main_tree_fail(conf, "open the Maildir tree", MAILDIR_QUEUE_DIR,
		    errno);
	if (maildir_lock(d->md) < 0) {
		if (errno == EWOULDBLOCK)
			main_fail(EX_TEMPFAIL, "%s/%s is locked: another "
			    "pollsmtpd serves host %s on this tree; not "
			    "starting (nothing in the tree was changed)",
			    conf->maildir_path, maildir_lock_name(d->md),
			    conf->hostname);
		main_tree_fail(conf, "lock the Maildir tree",
		    maildir_lock_name(d->md), errno);
	}
	for (i = 0; i < conf->nusers; i++)
		if (maildir_add_user(d->md, conf->users[i]) < 0)
			main_tree_fail(conf, "make the Maildir",
			    conf->users[i], errno);
	if (d->pw != NULL && maildir_give(d->md, d->pw->pw_uid, d->gid, bad,
	    sizeof(bad)) < 0)
		main_tree_fail(conf, "give the Maildir tree to the daemon's "
		    "user at", bad, errno);
}

/*
 * main_tree_fail - a directory of the tree cannot be used. A symbolic
 * link where a directory belongs gets a message of its own: it is what
 * an attack on start-up as root looks like.
 */
static void
main_tree_fail(const struct conf *conf, const char *what, const char *rel,
    int err)
{
	if (err == ELOOP)
		main_fail(EX_OSERR, "%s/%s: a symbolic link where a directory of "
		    "the Maildir tree belongs (or in it): refusing to follow "
		    "it; nothing outside %s was touched", conf->maildir_path,
		    rel, conf->maildir_path);
	if (err == ENAMETOOLONG && !maildir_hostname_ok(conf->hostname))
		main_fail(EX_CONFIG, "hostname is too long for Maildir file "
		    "names");
	main_fail(EX_OSERR, "cannot %s %s/%s: %s", what, conf->maildir_path,
	    rel, strerror(err));
}

/* main_clean_tmp - locked and bound: this host's stale tmp/ files go */
static void
main_clean_tmp(struct main_daemon *d)
{
	int n;

	if ((n = maildir_clean_tmp(d->md)) < 0)
		main_fail(EX_OSERR, "cannot clean tmp/ under %s: %s",
		    d->conf->maildir_path, strerror(errno));
	if (n > 0)
		log_info("-", "removed %d stale file%s from tmp/", n,
		    n == 1 ? "" : "s");
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

/*
 * main_write_pid_file - written as root, before dropping it, and locked
 * (flock) for as long as the daemon lives: the lock, not the file's
 * presence, is what says a daemon runs (logrotate's pkill -L checks it).
 * The descriptor is kept to empty the file at exit where it cannot be
 * removed (see main_remove_pid_file).
 */
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
	if ((fd = open(path, O_RDWR | O_CREAT | O_NOFOLLOW | O_NOCTTY
	    | O_CLOEXEC, 0644)) < 0)
		main_fail(EX_CANTCREAT, "cannot write the pid file %s: %s",
		    path, strerror(errno));
	if (flock(fd, LOCK_EX | LOCK_NB) < 0) {
		n = errno;
		close(fd);
		main_fail(EX_CANTCREAT, "cannot lock the pid file %s: %s",
		    path, n == EWOULDBLOCK ? "a running pollsmtpd holds it"
		    : strerror(n));
	}
	d->pid_fd = fd;
	d->pid_written = 1;
	if (fchmod(fd, 0644) < 0 || ftruncate(fd, 0) < 0
	    || write(fd, text, (size_t)n) != n)
		main_fail(EX_CANTCREAT, "cannot write the pid file %s: %s",
		    path, strerror(errno));
}

/*
 * main_remove_pid_file - the pid file goes. Once root is dropped that
 * needs a directory server.user may write (e.g. /run/pollsmtpd/ owned
 * by it); otherwise the file is emptied through the descriptor kept, so
 * that no stale pid is left for a script to signal.
 */
static void
main_remove_pid_file(struct main_daemon *d)
{
	if (!d->pid_written)
		return;
	if (unlink(d->conf->pid_file) < 0 && errno != ENOENT
	    && d->pid_fd >= 0 && ftruncate(d->pid_fd, 0) < 0)
		log_warn("-", "cannot remove or empty the pid file %s",
		    d->conf->pid_file);
	if (d->pid_fd >= 0)
		close(d->pid_fd);
	d->pid_fd = -1;
	d->pid_written = 0;
}

/*
 * main_early_sink - records made before the logger runs: on standard
 * error, as without a sink, and kept for the log file (bounded; a record
 * that does not fit is only on standard error).
 */
static void
main_early_sink(enum log_level level, const char *record, size_t len,
    void *ctx)
{
	char line[LOG_RECORD_MAX + 1];

	(void)level;
	(void)ctx;
	memcpy(line, record, len);
	line[len] = '\n';
	if (write(STDERR_FILENO, line, len + 1) < 0) {
		/* Best effort, as log's own stderr sink. */
	}
	if (main_early_log != NULL && buf_room(main_early_log) >= len + 1)
		(void)buf_append(main_early_log, line, len + 1);
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
	if (d->pid_written) {
		char dir[MAIN_PATH_MAX];

		if (main_dir_of(d->conf->pid_file, dir, sizeof(dir)) == 0
		    && access(dir, W_OK | X_OK) < 0)
			log_info("-", "%s cannot remove the pid file %s once "
			    "it runs as %s: it will be emptied at exit (a "
			    "directory %s owns, e.g. /run/pollsmtpd/, lets "
			    "it go)", main_progname, d->conf->pid_file,
			    pw->pw_name, pw->pw_name);
	}
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
			/* Each reaps only its own child. */
			agent_reap(d->agent);
			logger_reap(d->logger);
			break;
		case SIGUSR1:
			agent_kick(d->agent);
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
	/* What start-up said on the terminal goes to the log file too. */
	if (*path != '\0' && strcmp(path, "/dev/null") != 0
	    && main_early_log != NULL)
		logger_replay(d->logger, buf_data(main_early_log),
		    buf_len(main_early_log));
	buf_free(main_early_log);
	main_early_log = NULL;
	if (event_add(d->loop, logger_fd(d->logger), 0, main_logger_ready,
	    d) < 0 || (d->logger_timer = event_timer_add(d->loop, -1,
	    main_logger_due, d)) == NULL)
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

/* main_logger_due - a logger's restart delay is over: flushing starts it */
static void
main_logger_due(struct event_loop *loop, struct event_timer *t, void *ctx)
{
	struct main_daemon *d = ctx;

	(void)loop;
	(void)t;
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

	long wait;

	if (d->logger == NULL)
		return;
	/* A logger replaced after a delay: the timer wakes us for it. */
	if ((wait = logger_restart_wait(d->logger)) >= 0)
		event_timer_set(d->logger_timer, wait);
	logger_flush(d->logger);
	event_set(loop, logger_fd(d->logger),
	    logger_wants_write(d->logger) ? EVENT_WRITE : 0);
}

/* The daemon's side of the agent's hooks: the log queue it inherits. */
static void
main_agent_before_fork(void *ctx)
{
	struct main_daemon *d = ctx;

	logger_flush(d->logger);
}

static int
main_agent_log_fd(void *ctx)
{
	struct main_daemon *d = ctx;

	return logger_fd(d->logger);
}

static void
main_agent_log_flush(void *ctx)
{
	struct main_daemon *d = ctx;

	logger_flush(d->logger);
}

static int
main_agent_log_wants_write(void *ctx)
{
	struct main_daemon *d = ctx;

	return logger_wants_write(d->logger);
}

/*
 * main_start_agent - fork the delivery agent (delivery.enabled), as the
 * unprivileged user: it inherits the log queue and nothing else.
 */
static void
main_start_agent(struct main_daemon *d)
{
	static struct agent_hooks hooks = {
		main_agent_before_fork, main_agent_log_fd,
		main_agent_log_flush, main_agent_log_wants_write, NULL,
	};

	if (!d->conf->delivery_enabled) {
		log_info("-", "delivery.enabled is false: no delivery agent");
		return;
	}
	hooks.ctx = d;
	if ((d->agent = agent_start(d->loop, d->conf, &hooks)) == NULL)
		main_fail(EX_OSERR, "cannot start the delivery agent: %s",
		    strerror(errno));
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
	main_remove_pid_file(d);
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
	d.pid_fd = -1;
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
	if ((status = main_preflight(&d, 0)) != EX_OK) {
		conf_free(d.conf);
		return status;
	}
	/* Read while still root: the key may be readable by root alone. */
	d.tls = main_load_tls(d.conf, &status);
	if (status != EX_OK) {
		conf_free(d.conf);
		return status;
	}
	main_running = &d;
	if ((main_early_log = buf_new(MAIN_EARLY_LOG_MAX)) != NULL)
		log_set_sink(main_early_sink, NULL);
	if (!d.foreground)
		d.ready_fd = main_daemonize();

	main_raise_fd_limit(d.conf);
	if ((d.loop = event_loop_new()) == NULL)
		main_fail(EX_OSERR, "out of memory");
	main_open_maildir(&d);
	if ((d.dl = deliver_new(d.conf, d.md)) == NULL
	    || (d.srv = conn_server_new(d.loop, d.conf, d.dl)) == NULL)
		main_fail(EX_OSERR, "out of memory");
	conn_server_set_tls(d.srv, d.tls);
	if (conn_listen(d.srv, &failed) < 0)
		main_fail(EX_OSERR, "cannot listen on %s: %s",
		    failed ? failed : "?", strerror(errno));
	main_clean_tmp(&d);
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

	main_start_agent(&d);
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
	if (notify_send("READY=1") < 0)		/* systemd Type=notify */
		log_warn("-", "cannot tell systemd that we serve");

	if (event_loop_run(d.loop) < 0) {
		log_err("-", "poll");
		status = EX_OSERR;
	}
	agent_stop(d.agent);
	d.agent = NULL;
	log_info("-", "%s stopped", main_progname);
	event_del(d.loop, logger_fd(d.logger));
	logger_stop(d.logger);
	d.logger = NULL;
	main_cleanup(&d);
	main_running = NULL;
	return status;
}
