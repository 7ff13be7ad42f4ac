# src/deliver/local.mk - the delivery agent, linked into pollsmtpd and run
# as its child; a convenience library, so that the tests link the very
# same objects.

noinst_LTLIBRARIES += src/deliver/libdeliver.la
src_deliver_libdeliver_la_SOURCES = \
	%D%/agent.c %D%/agent.h \
	%D%/claim.c %D%/claim.h \
	%D%/client.c %D%/client.h \
	%D%/dns.c %D%/dns.h \
	%D%/bounce.c %D%/bounce.h
src_deliver_libdeliver_la_CPPFLAGS = $(AM_CPPFLAGS) -I$(top_srcdir)/src/deliver
src_deliver_libdeliver_la_CFLAGS = $(AM_CFLAGS) $(LIBCONFIG_CFLAGS) $(CARES_CFLAGS)
src_deliver_libdeliver_la_LIBADD = lib/libpollsmtpd.la $(CARES_LIBS)
