# src/maildir-inspect/local.mk - the queue inspection tool.

bin_PROGRAMS += src/maildir-inspect/maildir-inspect
src_maildir_inspect_maildir_inspect_SOURCES = %D%/main.c
src_maildir_inspect_maildir_inspect_CFLAGS = $(AM_CFLAGS) $(LIBCONFIG_CFLAGS)
src_maildir_inspect_maildir_inspect_LDADD = lib/libpollsmtpd.la $(LIBCONFIG_LIBS)
