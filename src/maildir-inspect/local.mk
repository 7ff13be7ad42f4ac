# src/maildir-inspect/local.mk - the queue inspection tool.

bin_PROGRAMS += src/maildir-inspect/maildir-inspect
src_maildir_inspect_maildir_inspect_SOURCES = \
	%D%/main.c \
	%D%/inspect.c %D%/inspect.h \
	%D%/json.c %D%/json.h \
	%D%/scan.c %D%/scan.h \
	%D%/summary.c %D%/summary.h \
	%D%/list.c %D%/list.h \
	%D%/ages.c %D%/ages.h \
	%D%/check.c %D%/check.h
src_maildir_inspect_maildir_inspect_CFLAGS = $(AM_CFLAGS) $(LIBCONFIG_CFLAGS)
src_maildir_inspect_maildir_inspect_LDADD = lib/libpollsmtpd.la $(LIBCONFIG_LIBS)
