# src/pollsmtpd/local.mk - the daemon. Everything but main.c lives in a
# convenience library so that the tests link the very same objects.

noinst_LTLIBRARIES += src/pollsmtpd/libsmtpd.la
src_pollsmtpd_libsmtpd_la_SOURCES = \
	%D%/session.c %D%/session.h \
	%D%/deliver.c %D%/deliver.h \
	%D%/conn.c %D%/conn.h \
	%D%/logger.c %D%/logger.h \
	%D%/notify.c %D%/notify.h
# deliver.c writes success reports with the agent's bounce module.
src_pollsmtpd_libsmtpd_la_CPPFLAGS = $(AM_CPPFLAGS) -I$(top_srcdir)/src/pollsmtpd \
	-I$(top_srcdir)/src/deliver
src_pollsmtpd_libsmtpd_la_CFLAGS = $(AM_CFLAGS) $(LIBCONFIG_CFLAGS)
src_pollsmtpd_libsmtpd_la_LIBADD = lib/libpollsmtpd.la

sbin_PROGRAMS += src/pollsmtpd/pollsmtpd
src_pollsmtpd_pollsmtpd_SOURCES = %D%/main.c
src_pollsmtpd_pollsmtpd_CPPFLAGS = $(AM_CPPFLAGS) -I$(top_srcdir)/src/pollsmtpd \
	-I$(top_srcdir)/src/deliver
src_pollsmtpd_pollsmtpd_CFLAGS = $(AM_CFLAGS) $(LIBCONFIG_CFLAGS)
src_pollsmtpd_pollsmtpd_LDADD = src/pollsmtpd/libsmtpd.la src/deliver/libdeliver.la \
	lib/libpollsmtpd.la $(LIBCONFIG_LIBS) $(CARES_LIBS) $(OPENSSL_LIBS)
