# lib/local.mk - libpollsmtpd, the convenience library shared by the
# programs and the tests.

noinst_LTLIBRARIES += lib/libpollsmtpd.la
lib_libpollsmtpd_la_SOURCES = \
	%D%/buf.c %D%/buf.h \
	%D%/log.c %D%/log.h \
	%D%/conf.c %D%/conf.h \
	%D%/addr.c %D%/addr.h \
	%D%/maildir.c %D%/maildir.h \
	%D%/queuefile.c %D%/queuefile.h \
	%D%/event.c %D%/event.h \
	%D%/io.c %D%/io.h \
	%D%/tls.c %D%/tls.h \
	%D%/spool.c %D%/spool.h \
	%D%/child.c %D%/child.h
lib_libpollsmtpd_la_CFLAGS = $(AM_CFLAGS) $(LIBCONFIG_CFLAGS) $(LIBIDN2_CFLAGS)
lib_libpollsmtpd_la_LIBADD = $(LIBCONFIG_LIBS) $(LIBIDN2_LIBS)
