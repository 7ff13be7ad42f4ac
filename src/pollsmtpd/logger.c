/*
 * NAME
 *	logger - the logging process and the daemon's side of its queue
 * SYNOPSIS
 *	See logger.h.
 * DESCRIPTION
 *	Messages on the queue are one type byte and a payload:
 *	  'R' records	finished log lines, separated by newlines (the last
 *			one without)
 *	  'O'		reopen the log file (log rotation)
 *	  'Q'		write everything before this, then exit
 *	Being on one queue, a reopen or a stop is ordered with the records
 *	sent before it.
 *
 *	The queue is opened O_RDWR|O_NONBLOCK by the daemon and unlinked at
 *	once: a logger forked later (after a crash of the previous one)
 *	inherits the descriptor, and no queue can be left behind in
 *	/dev/mqueue, even when the daemon is killed with SIGKILL.
 *	The logger learns that the daemon is gone from a pipe: the daemon
 *	holds the only write end, so the read end reports end-of-file when
 *	the daemon dies for whatever reason; the logger then drains the queue
 *	and exits instead of living on as an orphan.
 *
 *	The daemon's sink only appends the record to the backlog, a bounded
 *	buffer of newline-terminated records; logger_flush(), called by the
 *	event loop before each poll() and again whenever the queue descriptor
 *	polls writable, packs as many whole records as fit into each queue
 *	message. One message (and one wake-up of the logger) then carries
 *	every record of a loop iteration, instead of one each.
 *
 *	Losses are said, never silent: records the logger cannot write
 *	(ENOSPC, EIO) are counted, and the first write that works again is
 *	preceded by "log file PATH: N records lost: REASON". A reopen that
 *	fails (log rotation into a directory the logger may not write)
 *	leaves a warning in the old file, which it keeps writing. A logger
 *	that dies within LOGGER_STABLE_MS of its start is replaced after a
 *	delay that doubles, from LOGGER_BACKOFF_MIN_MS up to
 *	LOGGER_BACKOFF_MAX_MS, so a logger that cannot live does not make
 *	the daemon fork in a loop; the daemon's loop wakes for it through
 *	a loop timer set to logger_restart_wait().
 * DIAGNOSTICS
 *	The logger writes its own complaints (a failed write or reopen) to
 *	the log it has, and carries on.
 * LIMITS
 *	LOGGER_BACKLOG_MAX bytes of waiting records; LOG_RECORD_MAX a record.
 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <mqueue.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "buf.h"
#include "child.h"
#include "log.h"
#include "logger.h"

#define LOGGER_MSG_MAX		8192	/* fs.mqueue.msgsize_max, by default */
#define LOGGER_MSG_MIN		(LOG_RECORD_MAX + 1)
#define LOGGER_STOP_MS		5000	/* how long logger_stop() waits for room */
#define LOGGER_BATCH		64	/* records written with one writev() */
#define LOGGER_STABLE_MS	5000	/* a logger that lived this long was fine */
#define LOGGER_BACKOFF_MIN_MS	100	/* first delay after a quick death */
#define LOGGER_BACKOFF_MAX_MS	30000	/* the delay doubles up to this */

struct logger {
	mqd_t mq;
	int pipe_rd;			/* the logger's end (kept to fork again) */
	int pipe_wr;			/* only the daemon holds it */
	int log_fd;			/* the daemon's copy, for a new logger */
	char *path;			/* "" = standard error */
	pid_t pid;			/* the running logger, or 0 */
	size_t msgsize;			/* of the queue's messages */
	uid_t uid;
	gid_t gid;
	char *user;
	struct buf *backlog;		/* records waiting, each ends in LF */
	unsigned long dropped;		/* records lost since the last notice */
	int reopen;			/* an 'O' waits to be sent */
	int stopping;
	struct timespec started;	/* when the running logger was forked */
	long backoff_ms;		/* the next delay after a quick death */
	int restart_due;		/* a new logger waits for restart_at */
	struct timespec restart_at;
	/* In the logger process: records it could not write. */
	unsigned long lost;		/* since the last notice */
	int lost_errno;			/* why the last one was lost */
	int partial;			/* a record was cut by a failed write */
};

static void logger_sink(enum log_level level, const char *record, size_t len,
    void *ctx);
static int logger_send(struct logger *lg, char type, const char *data,
    size_t len);
static int logger_fork(struct logger *lg, int first);
static void logger_free(struct logger *lg);
static int logger_open_file(const char *path);
static __attribute__((noreturn)) void logger_child_main(struct logger *lg,
    int first);
static long logger_ms_since(const struct timespec *then);
static void logger_write_all(struct logger *lg, struct iovec *iov, int n);
static void logger_note_lost(struct logger *lg);
static void logger_reopen_file(struct logger *lg);
static void logger_detach_stdio(int keep_stderr);

struct logger *
logger_start(const char *log_file, uid_t uid, gid_t gid, const char *user)
{
	struct logger *lg;
	static const struct { long depth, size; } shapes[] = {
		{ 32, LOGGER_MSG_MAX }, { 10, LOGGER_MSG_MAX },
		{ 10, LOGGER_MSG_MIN },
	};
	struct mq_attr attr;
	char name[64];
	int fds[2] = { -1, -1 };
	size_t i;

	if ((lg = calloc(1, sizeof(*lg))) == NULL) {
		log_warn(NULL, "logger: out of memory");
		return NULL;
	}
	lg->mq = (mqd_t)-1;
	lg->pipe_rd = lg->pipe_wr = lg->log_fd = -1;
	lg->uid = uid;
	lg->gid = gid;
	if ((lg->path = strdup(log_file)) == NULL ||
	    (lg->user = strdup(user != NULL ? user : "")) == NULL ||
	    (lg->backlog = buf_new(LOGGER_BACKLOG_MAX)) == NULL) {
		log_warn(NULL, "logger: out of memory");
		goto fail;
	}
	if ((lg->log_fd = logger_open_file(lg->path)) < 0) {
		log_warn(NULL, "cannot open log file %s", lg->path);
		goto fail;
	}

	if (snprintf(name, sizeof(name), "/pollsmtpd.%ld.%lx", (long)getpid(),
	    (unsigned long)time(NULL)) >= (int)sizeof(name))
		goto fail;
	/*
	 * The deepest queue of the largest messages the system grants:
	 * fs.mqueue.msg_max and msgsize_max bind unprivileged users, and
	 * RLIMIT_MSGQUEUE every user's queues together.
	 */
	for (i = 0; i < sizeof(shapes) / sizeof(shapes[0]); i++) {
		memset(&attr, 0, sizeof(attr));
		attr.mq_maxmsg = shapes[i].depth;
		attr.mq_msgsize = shapes[i].size;
		lg->mq = mq_open(name, O_RDWR | O_CREAT | O_EXCL | O_NONBLOCK,
		    0600, &attr);
		if (lg->mq != (mqd_t)-1 || (errno != EINVAL && errno != EMFILE &&
		    errno != ENOMEM && errno != EPERM))
			break;
	}
	if (lg->mq == (mqd_t)-1) {
		log_warn(NULL, "cannot create the log queue %s", name);
		goto fail;
	}
	lg->msgsize = (size_t)attr.mq_msgsize;
	(void)mq_unlink(name);

	if (pipe2(fds, O_CLOEXEC) < 0) {
		log_warn(NULL, "logger: pipe");
		goto fail;
	}
	lg->pipe_rd = fds[0];
	lg->pipe_wr = fds[1];
	if (logger_fork(lg, 1) < 0)
		goto fail;
	log_set_sink(logger_sink, lg);
	return lg;

fail:
	logger_free(lg);
	return NULL;
}

/* logger_free - release what logger_start() acquired (the logger is gone) */
static void
logger_free(struct logger *lg)
{
	if (lg->pipe_rd >= 0)
		close(lg->pipe_rd);
	if (lg->pipe_wr >= 0)
		close(lg->pipe_wr);
	if (lg->mq != (mqd_t)-1)
		mq_close(lg->mq);
	if (lg->log_fd > STDERR_FILENO)
		close(lg->log_fd);
	buf_free(lg->backlog);
	free(lg->user);
	free(lg->path);
	free(lg);
}

int
logger_fd(const struct logger *lg)
{
	return (int)lg->mq;
}

pid_t
logger_pid(const struct logger *lg)
{
	return lg->pid;
}

int
logger_wants_write(const struct logger *lg)
{
	return buf_len(lg->backlog) > 0 || lg->dropped > 0 || lg->reopen;
}

/* logger_send - put one message on the queue without blocking */
static int
logger_send(struct logger *lg, char type, const char *data, size_t len)
{
	char msg[LOGGER_MSG_MAX];

	if (len > lg->msgsize - 1)
		len = lg->msgsize - 1;
	msg[0] = type;
	memcpy(msg + 1, data, len);
	return mq_send(lg->mq, msg, len + 1, 0);
}

/* logger_backlog_add - keep a record for the next flush; count it when full */
static void
logger_backlog_add(struct logger *lg, const char *record, size_t len)
{
	char note[LOG_RECORD_MAX];
	size_t nlen = 0;

	if (lg->dropped > 0)
		nlen = log_format(note, LOG_LEVEL_WARN, NULL,
		    "log backlog full: %lu records dropped", lg->dropped);
	if (buf_room(lg->backlog) < nlen + 1 + len + 1) {
		lg->dropped++;
		return;
	}
	if (nlen > 0) {
		(void)buf_append(lg->backlog, note, nlen);
		(void)buf_append(lg->backlog, "\n", 1);
		lg->dropped = 0;
	}
	(void)buf_append(lg->backlog, record, len);
	(void)buf_append(lg->backlog, "\n", 1);
}

static void
logger_sink(enum log_level level, const char *record, size_t len, void *ctx)
{
	(void)level;
	logger_backlog_add(ctx, record, len);
}

void
logger_replay(struct logger *lg, const char *records, size_t len)
{
	const char *lf;
	size_t n;

	while (len > 0) {
		if ((lf = memchr(records, '\n', len)) == NULL)
			n = len;
		else
			n = (size_t)(lf - records);
		if (n > 0 && n < LOG_RECORD_MAX)
			logger_backlog_add(lg, records, n);
		n = lf != NULL ? n + 1 : n;
		records += n;
		len -= n;
	}
}

void
logger_flush(struct logger *lg)
{
	const char *data, *lf;
	size_t len, take;

	while ((len = buf_len(lg->backlog)) > 0) {
		data = buf_data(lg->backlog);
		/* Whole records only: the last newline that fits. */
		take = len < lg->msgsize - 1 ? len : lg->msgsize - 1;
		if ((lf = memrchr(data, '\n', take)) == NULL)
			log_panic(__func__, "a record longer than a message");
		take = (size_t)(lf - data);
		if (logger_send(lg, 'R', data, take) < 0)
			return;
		buf_consume(lg->backlog, take + 1);
	}
	if (lg->dropped > 0) {
		char note[LOG_RECORD_MAX];

		len = log_format(note, LOG_LEVEL_WARN, NULL,
		    "log backlog full: %lu records dropped", lg->dropped);
		if (logger_send(lg, 'R', note, len) < 0)
			return;
		lg->dropped = 0;
	}
	/* After the records logged before it, which go to the old file. */
	if (lg->reopen && logger_send(lg, 'O', "", 0) == 0)
		lg->reopen = 0;
}

void
logger_reap(struct logger *lg)
{
	int status;
	pid_t pid;

	/* Only the logger: the daemon has other children (the agent). */
	while (lg->pid > 0
	    && (pid = waitpid(lg->pid, &status, WNOHANG)) == lg->pid) {
		lg->pid = 0;
		if (lg->stopping)
			continue;
		/*
		 * A logger that dies at once (a broken log disk, a bad
		 * file) must not be forked again in a loop: after a quick
		 * death the next one waits, the wait doubling each time.
		 */
		if (logger_ms_since(&lg->started) >= LOGGER_STABLE_MS)
			lg->backoff_ms = 0;
		if (WIFSIGNALED(status))
			log_warnx(NULL, "logger process %ld killed by signal %d; "
			    "starting a new one in %ld ms", (long)pid,
			    WTERMSIG(status), lg->backoff_ms);
		else
			log_warnx(NULL, "logger process %ld exited with status %d; "
			    "starting a new one in %ld ms", (long)pid,
			    WEXITSTATUS(status), lg->backoff_ms);
		clock_gettime(CLOCK_MONOTONIC, &lg->restart_at);
		lg->restart_at.tv_sec += lg->backoff_ms / 1000;
		lg->restart_at.tv_nsec += (lg->backoff_ms % 1000) * 1000000L;
		if (lg->restart_at.tv_nsec >= 1000000000L) {
			lg->restart_at.tv_sec++;
			lg->restart_at.tv_nsec -= 1000000000L;
		}
		lg->restart_due = 1;
		lg->backoff_ms = lg->backoff_ms == 0 ? LOGGER_BACKOFF_MIN_MS
		    : lg->backoff_ms * 2 > LOGGER_BACKOFF_MAX_MS
		    ? LOGGER_BACKOFF_MAX_MS : lg->backoff_ms * 2;
		(void)logger_restart_wait(lg);
	}
}

/* logger_ms_since - milliseconds of CLOCK_MONOTONIC since then */
static long
logger_ms_since(const struct timespec *then)
{
	struct timespec now;

	clock_gettime(CLOCK_MONOTONIC, &now);
	return (now.tv_sec - then->tv_sec) * 1000L
	    + (now.tv_nsec - then->tv_nsec) / 1000000L;
}

long
logger_restart_wait(struct logger *lg)
{
	long left;

	if (!lg->restart_due || lg->pid != 0 || lg->stopping)
		return -1;
	if ((left = -logger_ms_since(&lg->restart_at)) > 0)
		return left;
	lg->restart_due = 0;
	if (logger_fork(lg, 0) < 0) {
		/* No fork now: try again after the next delay. */
		lg->restart_due = 1;
		clock_gettime(CLOCK_MONOTONIC, &lg->restart_at);
		lg->restart_at.tv_sec += 1;
		return 1000;
	}
	return -1;
}

void
logger_reopen(struct logger *lg)
{
	int fd;

	/* The daemon's copy too: a logger forked later starts from it. */
	if (*lg->path != '\0' && (fd = logger_open_file(lg->path)) >= 0) {
		close(lg->log_fd);
		lg->log_fd = fd;
	}
	log_info(NULL, "reopening the log file");
	lg->reopen = 1;
	logger_flush(lg);
}

/* logger_wait_room - wait until the queue takes a message, until deadline */
static int
logger_wait_room(struct logger *lg, const struct timespec *deadline)
{
	struct pollfd pfd = { .fd = (int)lg->mq, .events = POLLOUT };
	struct timespec now;
	long ms;

	clock_gettime(CLOCK_MONOTONIC, &now);
	ms = (deadline->tv_sec - now.tv_sec) * 1000L +
	    (deadline->tv_nsec - now.tv_nsec) / 1000000L;
	if (ms <= 0 || lg->pid == 0)
		return -1;
	return poll(&pfd, 1, (int)ms) > 0 ? 0 : -1;
}

void
logger_stop(struct logger *lg)
{
	struct timespec deadline, pause = { 0, 10 * 1000 * 1000 };
	int i, status;

	if (lg == NULL)
		return;
	clock_gettime(CLOCK_MONOTONIC, &deadline);
	deadline.tv_sec += LOGGER_STOP_MS / 1000;
	for (;;) {
		logger_flush(lg);
		if (!logger_wants_write(lg) && logger_send(lg, 'Q', "", 0) == 0)
			break;
		if (logger_wait_room(lg, &deadline) < 0)
			break;
	}
	lg->stopping = 1;
	log_set_sink(NULL, NULL);
	for (i = 0; lg->pid > 0 && i < LOGGER_STOP_MS / 10; i++) {
		if (waitpid(lg->pid, &status, WNOHANG) == lg->pid) {
			lg->pid = 0;
			break;
		}
		nanosleep(&pause, NULL);
	}
	if (lg->pid > 0) {
		kill(lg->pid, SIGKILL);
		(void)waitpid(lg->pid, &status, 0);
	}
	logger_free(lg);
}

static int
logger_open_file(const char *path)
{
	if (*path == '\0')
		return fcntl(STDERR_FILENO, F_DUPFD_CLOEXEC, 3);
	return open(path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC | O_NOCTTY,
	    0640);
}

static int
logger_fork(struct logger *lg, int first)
{
	pid_t pid;

	if ((pid = fork()) < 0) {
		log_warn(NULL, "cannot fork the logger");
		return -1;
	}
	if (pid == 0)
		logger_child_main(lg, first);
	lg->pid = pid;
	clock_gettime(CLOCK_MONOTONIC, &lg->started);
	log_debug(NULL, "logger process %ld started", (long)pid);
	return 0;
}

/*
 * logger_detach_stdio - the logger needs no terminal: its standard input
 * and output (and standard error, unless that is its log) go to
 * /dev/null, so that a detached start does not keep the terminal's (or
 * a "$(pollsmtpd)" caller's) pipes open for as long as the logger lives.
 */
static void
logger_detach_stdio(int keep_stderr)
{
	int null;

	if ((null = open("/dev/null", O_RDWR | O_CLOEXEC)) < 0)
		return;
	(void)dup2(null, STDIN_FILENO);
	(void)dup2(null, STDOUT_FILENO);
	if (!keep_stderr)
		(void)dup2(null, STDERR_FILENO);
	close(null);
}

/*
 * logger_write_all - write the batch, whatever short writes happen. What
 * cannot be written (the log disk is full, or gone) is dropped but
 * counted, record by record; the first write that works again is
 * preceded by a record that says how many were lost, and why.
 */
static void
logger_write_all(struct logger *lg, struct iovec *iov, int n)
{
	ssize_t w;
	size_t i;
	int first = 1;

	if (n > 0 && lg->lost > 0)
		logger_note_lost(lg);
	while (n > 0) {
		if ((w = writev(lg->log_fd, iov, n)) <= 0) {
			if (w < 0 && errno == EINTR)
				continue;
			lg->lost_errno = w < 0 ? errno : EIO;
			/* Each LF still unwritten ends a record lost. */
			for (; n > 0; iov++, n--) {
				for (i = 0; i < iov->iov_len; i++)
					if (((const char *)iov->iov_base)[i] == '\n')
						lg->lost++;
			}
			if (!first)
				lg->partial = 1;
			return;
		}
		first = 0;
		while (n > 0 && (size_t)w >= iov->iov_len) {
			w -= (ssize_t)iov->iov_len;
			iov++;
			n--;
		}
		if (n > 0) {
			iov->iov_base = (char *)iov->iov_base + w;
			iov->iov_len -= (size_t)w;
			lg->partial = 1;
		}
	}
	lg->partial = 0;
}

/*
 * logger_note_lost - write the notice of records lost; kept for later
 * when the file still cannot take it.
 */
static void
logger_note_lost(struct logger *lg)
{
	char note[LOG_RECORD_MAX + 2];
	size_t len = 0;

	if (lg->partial)
		note[len++] = '\n';	/* end the record cut in the middle */
	len += log_format(note + len, LOG_LEVEL_WARN, NULL, "log file %s: "
	    "%lu record%s lost: %s", *lg->path ? lg->path : "(stderr)",
	    lg->lost, lg->lost == 1 ? "" : "s", strerror(lg->lost_errno));
	note[len++] = '\n';
	if (write(lg->log_fd, note, len) == (ssize_t)len) {
		lg->lost = 0;
		lg->partial = 0;
	}
}

/*
 * logger_reopen_file - log rotation: the file at path again. When it
 * cannot be opened (the unprivileged logger may not create a file in a
 * root-owned directory), a warning goes to the file it has, which it
 * keeps writing: records are never sent nowhere.
 */
static void
logger_reopen_file(struct logger *lg)
{
	char note[LOG_RECORD_MAX + 1];
	struct iovec iov;
	size_t len;
	int fd;

	if (*lg->path == '\0')
		return;
	if ((fd = logger_open_file(lg->path)) >= 0) {
		close(lg->log_fd);
		lg->log_fd = fd;
		return;
	}
	len = log_format(note, LOG_LEVEL_WARN, NULL, "cannot reopen the log "
	    "file %s: %s; still writing to the file opened before",
	    lg->path, strerror(errno));
	note[len++] = '\n';
	iov.iov_base = note;
	iov.iov_len = len;
	logger_write_all(lg, &iov, 1);
}

/*
 * logger_drain - write every message now on the queue; returns 1 when a
 * 'Q' was seen (exit), else 0.
 */
static int
logger_drain(struct logger *lg)
{
	static char msgs[LOGGER_BATCH][LOGGER_MSG_MAX + 1];	/* + the LF */
	struct iovec iov[LOGGER_BATCH * 2];
	ssize_t n;
	int count;

	for (;;) {
		for (count = 0; count < LOGGER_BATCH; count++) {
			n = mq_receive(lg->mq, msgs[count], lg->msgsize, NULL);
			if (n <= 0)
				break;
			if (msgs[count][0] == 'R') {
				msgs[count][n] = '\n';
				iov[count].iov_base = msgs[count] + 1;
				iov[count].iov_len = (size_t)n;
				continue;
			}
			/* A control message: write what came before it first. */
			logger_write_all(lg, iov, count);
			if (msgs[count][0] == 'Q')
				return 1;
			if (msgs[count][0] == 'O')
				logger_reopen_file(lg);
			count = -1;
		}
		if (count > 0)
			logger_write_all(lg, iov, count);
		if (count < LOGGER_BATCH)
			return 0;
	}
}

static void
logger_child_main(struct logger *lg, int first)
{
	struct pollfd pfd[2];
	int keep[3];
	char c;

	/*
	 * Stop signals are the daemon's business: the logger goes on until
	 * the daemon says 'Q' or is gone, so no record is lost at shutdown.
	 */
	signal(SIGTERM, SIG_IGN);
	signal(SIGINT, SIG_IGN);
	signal(SIGHUP, SIG_IGN);
	signal(SIGPIPE, SIG_IGN);
	signal(SIGCHLD, SIG_DFL);
	log_set_sink(NULL, NULL);
	close(lg->pipe_wr);
	keep[0] = (int)lg->mq;
	keep[1] = lg->pipe_rd;
	keep[2] = lg->log_fd;
	child_close_others(keep, 3);
	logger_detach_stdio(*lg->path == '\0');

	if (first && lg->uid != (uid_t)-1 && geteuid() == 0) {
		if ((*lg->user != '\0' && initgroups(lg->user, lg->gid) < 0) ||
		    setgid(lg->gid) < 0 || setuid(lg->uid) < 0) {
			log_warn(NULL, "logger: cannot drop privileges");
			_exit(1);
		}
	}
	/* A logger forked after a reopen starts on the current file. */
	lg->lost = 0;
	lg->partial = 0;
	if (!first)
		logger_reopen_file(lg);

	pfd[0].fd = (int)lg->mq;
	pfd[0].events = POLLIN;
	pfd[1].fd = lg->pipe_rd;
	pfd[1].events = POLLIN;
	for (;;) {
		if (poll(pfd, 2, -1) < 0) {
			if (errno == EINTR)
				continue;
			_exit(1);
		}
		if (logger_drain(lg))
			_exit(0);
		if (pfd[1].revents != 0 && read(lg->pipe_rd, &c, 1) <= 0) {
			/* The daemon is gone: write what it left, then go. */
			(void)logger_drain(lg);
			_exit(0);
		}
	}
}
