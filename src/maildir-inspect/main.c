/*
 * NAME
 *	maildir-inspect - look at pollsmtpd's Maildir tree and remote queue
 * SYNOPSIS
 *	maildir-inspect [-c FILE | -d ROOT] [--json] [COMMAND [ARGS]]
 * DESCRIPTION
 *	main() reads the command line, finds the root (-d ROOT, or
 *	application.maildir.path of the configuration), opens it and runs
 *	one command: summary (the default), list, show, ages or check. The
 *	tool never writes to the tree: everything is opened O_RDONLY and
 *	nothing is created, so it is safe while the daemon runs.
 * DIAGNOSTICS
 *	Exit statuses from sysexits.h: 0 ok; 1 check found problems, or
 *	show found no letter; EX_USAGE (64); EX_NOINPUT (66) the root is
 *	missing or cannot be opened; EX_CONFIG (78) the configuration
 *	cannot be loaded; EX_IOERR (74) a file or directory could not be
 *	read (the output is still complete for everything else), or
 *	standard output could not be written; EX_OSERR (71) out of memory.
 */
#include "config.h"

#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sysexits.h>
#include <time.h>
#include <unistd.h>

#include "addr.h"
#include "ages.h"
#include "check.h"
#include "conf.h"
#include "inspect.h"
#include "list.h"
#include "log.h"
#include "summary.h"

#ifndef SYSCONFDIR
#define SYSCONFDIR "/etc"
#endif
#define DEFAULT_CONFIG	SYSCONFDIR "/pollsmtpd/pollsmtpd.conf"

/* Options that only some commands take. */
#define OPT_LIST	0x01	/* --from --to --older-than */
#define OPT_ERROR	0x02	/* --error */
#define OPT_BODY	0x04	/* --body */
#define OPT_AGES	0x08	/* -b N, -s */

enum {
	OPT_FROM = 256,
	OPT_TO,
	OPT_OLDER_THAN,
	OPT_ERROR_DIR,
	OPT_SHOW_BODY,
};

struct command {
	const char *name;
	int (*run)(struct inspect *in);
	int min_args;
	int max_args;
	int options;		/* OPT_* it accepts */
};

static const struct command commands[] = {
	{ "summary", summary_run, 0, 0, 0 },
	{ "list", list_run, 0, 1, OPT_LIST | OPT_ERROR },
	{ "show", show_run, 1, 1, OPT_BODY },
	{ "ages", ages_run, 0, 0, OPT_ERROR | OPT_AGES },
	{ "check", check_run, 0, 0, 0 },
};

static const struct option long_options[] = {
	{ "config", required_argument, NULL, 'c' },
	{ "root", required_argument, NULL, 'd' },
	{ "json", no_argument, NULL, 'j' },
	{ "from", required_argument, NULL, OPT_FROM },
	{ "to", required_argument, NULL, OPT_TO },
	{ "older-than", required_argument, NULL, OPT_OLDER_THAN },
	{ "error", no_argument, NULL, OPT_ERROR_DIR },
	{ "body", no_argument, NULL, OPT_SHOW_BODY },
	{ "buckets", required_argument, NULL, 'b' },
	{ "sender", no_argument, NULL, 's' },
	{ "help", no_argument, NULL, 'h' },
	{ "version", no_argument, NULL, 'V' },
	{ NULL, 0, NULL, 0 },
};

static void usage(FILE *fp);
static int usage_error(const char *fmt, ...)
    __attribute__((format(printf, 1, 2)));
static void conf_report(const char *message, void *ctx);
static const struct command *find_command(const char *name);
static int check_id(const char *id);
static char *domain_argument(const char *text);

static void
usage(FILE *fp)
{
	fprintf(fp,
	    "usage: maildir-inspect [-c FILE | -d ROOT] [--json] [COMMAND]\n"
	    "\n"
	    "commands:\n"
	    "  summary                per remote domain: queued letters, bytes,\n"
	    "                         oldest, letters in error/; per local user:\n"
	    "                         new and cur (the default)\n"
	    "  list [DOMAIN]          one line per queued letter\n"
	    "      --from TEXT        sender contains TEXT (any case; \"<>\": null\n"
	    "                         sender)\n"
	    "      --to TEXT          a recipient contains TEXT (any case)\n"
	    "      --older-than AGE   older than AGE (90s, 10m, 2h, 3d, 1w, 1h30m)\n"
	    "      --error            letters in error/ instead of queued ones\n"
	    "  show ID [--body]       envelope and headers (--body: the whole\n"
	    "                         message) of the letters with that ID,\n"
	    "                         queued or delivered to a local user\n"
	    "  ages [--error]         letters per domain and age bucket (qshape)\n"
	    "      -b, --buckets N    N buckets (default %d, at most %d)\n"
	    "      -s, --sender       by sender domain, not recipient domain\n"
	    "  check                  stale tmp/ files, bad names, malformed\n"
	    "                         envelopes, unknown entries; exit 1 on any\n"
	    "\n"
	    "options:\n"
	    "  -c, --config FILE      the daemon's configuration (default\n"
	    "                         %s)\n"
	    "  -d, --root ROOT        the Maildir root, without a configuration\n"
	    "  -j, --json             one JSON document (see maildir-inspect(1))\n"
	    "  -h, --help             this text\n"
	    "  -V, --version          the version\n",
	    AGES_BUCKETS_DEFAULT, AGES_BUCKETS_MAX, DEFAULT_CONFIG);
}

static int
usage_error(const char *fmt, ...)
{
	va_list ap;

	fputs("maildir-inspect: ", stderr);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputs("\nTry 'maildir-inspect --help'.\n", stderr);
	return EX_USAGE;
}

static void
conf_report(const char *message, void *ctx)
{
	(void)ctx;
	fprintf(stderr, "maildir-inspect: %s\n", message);
}

static const struct command *
find_command(const char *name)
{
	size_t i;

	for (i = 0; i < sizeof(commands) / sizeof(commands[0]); i++)
		if (strcmp(commands[i].name, name) == 0)
			return &commands[i];
	return NULL;
}

static int
check_id(const char *id)
{
	const char *s;

	if (*id == '\0' || strlen(id) >= INSPECT_ID_MAX)
		return -1;
	for (s = id; *s != '\0'; s++)
		if (!isalnum((unsigned char)*s) || (unsigned char)*s > 0x7f)
			return -1;
	return 0;
}

/*
 * domain_argument - the lower-cased DOMAIN of list, or NULL when it is
 * not a domain: it becomes a path under the queue, so "../x" must not
 * pass.
 */
static char *
domain_argument(const char *text)
{
	char *d, *s;

	if ((d = strdup(text)) == NULL)
		return NULL;
	for (s = d; *s != '\0'; s++)
		*s = (char)tolower((unsigned char)*s);
	if (!addr_domain_is_safe(d)) {
		free(d);
		errno = EINVAL;
		return NULL;
	}
	return d;
}

int
main(int argc, char **argv)
{
	struct inspect in;
	const struct command *cmd;
	struct conf *conf = NULL;
	const char *config = NULL, *root = NULL;
	char *domain = NULL;
	const char *first_option[OPT_AGES + 1] = { NULL };
	char *end;
	long n;
	int c, used = 0, nargs, status, flag, longindex = 0, err;

	log_init("maildir-inspect", 0);
	memset(&in, 0, sizeof(in));
	in.rootfd = -1;
	in.older_than = -1;
	in.buckets = AGES_BUCKETS_DEFAULT;

	opterr = 0;
	while ((c = getopt_long(argc, argv, ":c:d:jhVb:s", long_options,
	    &longindex)) != -1) {
		flag = c == OPT_FROM || c == OPT_TO || c == OPT_OLDER_THAN
		    ? OPT_LIST : c == OPT_ERROR_DIR ? OPT_ERROR
		    : c == OPT_SHOW_BODY ? OPT_BODY
		    : c == 'b' || c == 's' ? OPT_AGES : 0;
		if (flag != 0 && first_option[flag] == NULL)
			first_option[flag] = c == 'b' ? "buckets"
			    : c == 's' ? "sender"
			    : long_options[longindex].name;
		longindex = 0;
		switch (c) {
		case 'c':
			config = optarg;
			break;
		case 'd':
			root = optarg;
			break;
		case 'j':
			in.json = 1;
			break;
		case OPT_FROM:
			in.from = optarg;
			used |= flag;
			break;
		case OPT_TO:
			in.to = optarg;
			used |= flag;
			break;
		case OPT_OLDER_THAN:
			if (inspect_parse_duration(optarg, &in.older_than) < 0)
				return usage_error("bad duration '%s' (e.g. "
				    "90s, 10m, 2h, 3d, 1h30m)", optarg);
			used |= flag;
			break;
		case OPT_ERROR_DIR:
			in.error = 1;
			used |= flag;
			break;
		case OPT_SHOW_BODY:
			in.body = 1;
			used |= flag;
			break;
		case 'b':
			errno = 0;
			n = strtol(optarg, &end, 10);
			if (errno != 0 || end == optarg || *end != '\0' || n < 1
			    || n > AGES_BUCKETS_MAX)
				return usage_error("bad bucket count '%s' (1 to "
				    "%d)", optarg, AGES_BUCKETS_MAX);
			in.buckets = (int)n;
			used |= flag;
			break;
		case 's':
			in.by_sender = 1;
			used |= flag;
			break;
		case 'h':
			usage(stdout);
			return fflush(stdout) == 0 ? 0 : EX_IOERR;
		case 'V':
			printf("maildir-inspect (%s) %s\n", PACKAGE_NAME,
			    PACKAGE_VERSION);
			return fflush(stdout) == 0 ? 0 : EX_IOERR;
		case ':':
			return usage_error("option '%s' needs an argument",
			    argv[optind - 1]);
		default:
			return usage_error("unknown option '%s'",
			    argv[optind - 1]);
		}
	}

	if (optind == argc) {
		cmd = find_command("summary");
	} else if ((cmd = find_command(argv[optind])) == NULL) {
		return usage_error("unknown command '%s'", argv[optind]);
	} else {
		optind++;
	}
	nargs = argc - optind;
	if (nargs < cmd->min_args || nargs > cmd->max_args)
		return usage_error("wrong number of arguments for %s",
		    cmd->name);
	for (flag = OPT_LIST; flag <= OPT_AGES; flag <<= 1)
		if ((used & flag) && !(cmd->options & flag))
			return usage_error("--%s is not an option of %s",
			    first_option[flag], cmd->name);
	if (config != NULL && root != NULL)
		return usage_error("-c and -d exclude each other");
	if (strcmp(cmd->name, "show") == 0) {
		if (check_id(argv[optind]) < 0)
			return usage_error("'%s' is not a message ID (letters "
			    "and digits)", argv[optind]);
		in.id = argv[optind];
	}
	if (strcmp(cmd->name, "list") == 0 && nargs == 1) {
		if ((domain = domain_argument(argv[optind])) == NULL) {
			if (errno == ENOMEM) {
				inspect_warnx("out of memory");
				return EX_OSERR;
			}
			return usage_error("'%s' is not a domain name",
			    argv[optind]);
		}
		in.domain = domain;
	}

	if (root == NULL) {
		if (config == NULL)
			config = DEFAULT_CONFIG;
		if ((conf = conf_load(config, conf_report, NULL)) == NULL) {
			inspect_warnx("cannot use the configuration %s "
			    "(or name the root with -d ROOT)", config);
			status = EX_CONFIG;
			goto fail;
		}
		in.conf = conf;
		root = conf->maildir_path;
	}
	in.root = root;
	in.rootfd = open(root, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (in.rootfd < 0) {
		/* The warning may change errno (stderr a full disk, a pipe). */
		err = errno;
		status = (err == ENOENT || err == ENOTDIR || err == EACCES)
		    ? EX_NOINPUT : EX_IOERR;
		inspect_warnx("%s: %s", root, strerror(err));
		goto fail;
	}
	in.now = time(NULL);

	/* Big blocks: list and JSON write many small pieces. */
	(void)setvbuf(stdout, NULL, _IOFBF, 64 * 1024);
	status = cmd->run(&in);
	if (status == 0 && in.status != 0)
		status = in.status;
	errno = 0;
	if (fflush(stdout) != 0 || ferror(stdout)) {
		err = errno != 0 ? errno : EIO;
		status = EX_IOERR;
		inspect_warnx("cannot write the output: %s", strerror(err));
	}

fail:
	if (in.rootfd >= 0)
		(void)close(in.rootfd);
	conf_free(conf);
	free(domain);
	return status;
}
