# tests/local.mk - Check suites per module and end-to-end tests against
# the built daemon.

TEST_CFLAGS = $(AM_CFLAGS) $(CHECK_CFLAGS) $(LIBCONFIG_CFLAGS)
TEST_CPPFLAGS = $(AM_CPPFLAGS) -I$(top_srcdir)/src/pollsmtpd \
	-DTEST_SRCDIR='"$(abs_top_srcdir)/tests"'
TEST_LIBS = src/pollsmtpd/libsmtpd.la src/deliver/libdeliver.la \
	lib/libpollsmtpd.la $(CHECK_LIBS) $(LIBCONFIG_LIBS) $(OPENSSL_LIBS) \
	$(CARES_LIBS)

UNIT_TESTS = \
	tests/check_buf \
	tests/check_log \
	tests/check_conf \
	tests/check_addr \
	tests/check_maildir \
	tests/check_queuefile \
	tests/check_session \
	tests/check_logger \
	tests/check_event \
	tests/check_conn \
	tests/check_notify \
	tests/check_spool \
	tests/check_io \
	tests/check_deliver \
	tests/check_client \
	tests/check_dns \
	tests/check_bounce \
	tests/check_claim \
	tests/check_child
# The TLS io and context, against an OpenSSL client in the same process.
if HAVE_OPENSSL
UNIT_TESTS += tests/check_tls
endif
check_PROGRAMS += $(UNIT_TESTS)

tests_check_tls_SOURCES = %D%/check_tls.c
tests_check_tls_CFLAGS = $(TEST_CFLAGS) $(OPENSSL_CFLAGS)
tests_check_tls_CPPFLAGS = $(TEST_CPPFLAGS)
tests_check_tls_LDADD = $(TEST_LIBS)

# The delivery agent's suites link its library and c-ares too.
DELIVER_TEST_CPPFLAGS = $(TEST_CPPFLAGS) -I$(top_srcdir)/src/deliver
DELIVER_TEST_LIBS = src/deliver/libdeliver.la $(TEST_LIBS) $(CARES_LIBS)

tests_check_client_SOURCES = %D%/check_client.c
tests_check_client_CFLAGS = $(TEST_CFLAGS)
tests_check_client_CPPFLAGS = $(DELIVER_TEST_CPPFLAGS)
tests_check_client_LDADD = $(DELIVER_TEST_LIBS)

tests_check_dns_SOURCES = %D%/check_dns.c
tests_check_dns_CFLAGS = $(TEST_CFLAGS)
tests_check_dns_CPPFLAGS = $(DELIVER_TEST_CPPFLAGS)
tests_check_dns_LDADD = $(DELIVER_TEST_LIBS)

tests_check_bounce_SOURCES = %D%/check_bounce.c
tests_check_bounce_CFLAGS = $(TEST_CFLAGS)
tests_check_bounce_CPPFLAGS = $(DELIVER_TEST_CPPFLAGS)
tests_check_bounce_LDADD = $(DELIVER_TEST_LIBS)

tests_check_claim_SOURCES = %D%/check_claim.c
tests_check_claim_CFLAGS = $(TEST_CFLAGS)
tests_check_claim_CPPFLAGS = $(DELIVER_TEST_CPPFLAGS)
tests_check_claim_LDADD = $(DELIVER_TEST_LIBS)

tests_check_child_SOURCES = %D%/check_child.c
tests_check_child_CFLAGS = $(TEST_CFLAGS)
tests_check_child_CPPFLAGS = $(TEST_CPPFLAGS)
tests_check_child_LDADD = $(TEST_LIBS)

tests_check_buf_SOURCES = %D%/check_buf.c
tests_check_buf_CFLAGS = $(TEST_CFLAGS)
tests_check_buf_CPPFLAGS = $(TEST_CPPFLAGS)
tests_check_buf_LDADD = $(TEST_LIBS)

tests_check_log_SOURCES = %D%/check_log.c
tests_check_log_CFLAGS = $(TEST_CFLAGS)
tests_check_log_CPPFLAGS = $(TEST_CPPFLAGS)
tests_check_log_LDADD = $(TEST_LIBS)

tests_check_conf_SOURCES = %D%/check_conf.c
tests_check_conf_CFLAGS = $(TEST_CFLAGS)
tests_check_conf_CPPFLAGS = $(TEST_CPPFLAGS)
tests_check_conf_LDADD = $(TEST_LIBS)

tests_check_addr_SOURCES = %D%/check_addr.c
tests_check_addr_CFLAGS = $(TEST_CFLAGS)
tests_check_addr_CPPFLAGS = $(TEST_CPPFLAGS)
tests_check_addr_LDADD = $(TEST_LIBS)

tests_check_maildir_SOURCES = %D%/check_maildir.c
tests_check_maildir_CFLAGS = $(TEST_CFLAGS)
tests_check_maildir_CPPFLAGS = $(TEST_CPPFLAGS)
tests_check_maildir_LDADD = $(TEST_LIBS)

tests_check_queuefile_SOURCES = %D%/check_queuefile.c
tests_check_queuefile_CFLAGS = $(TEST_CFLAGS)
tests_check_queuefile_CPPFLAGS = $(TEST_CPPFLAGS)
tests_check_queuefile_LDADD = $(TEST_LIBS)

tests_check_logger_SOURCES = %D%/check_logger.c
tests_check_logger_CFLAGS = $(TEST_CFLAGS)
tests_check_logger_CPPFLAGS = $(TEST_CPPFLAGS)
tests_check_logger_LDADD = $(TEST_LIBS)

tests_check_event_SOURCES = %D%/check_event.c
tests_check_event_CFLAGS = $(TEST_CFLAGS)
tests_check_event_CPPFLAGS = $(TEST_CPPFLAGS)
tests_check_event_LDADD = $(TEST_LIBS)

tests_check_conn_SOURCES = %D%/check_conn.c
tests_check_conn_CFLAGS = $(TEST_CFLAGS)
tests_check_conn_CPPFLAGS = $(TEST_CPPFLAGS)
tests_check_conn_LDADD = $(TEST_LIBS)

tests_check_notify_SOURCES = %D%/check_notify.c
tests_check_notify_CFLAGS = $(TEST_CFLAGS)
tests_check_notify_CPPFLAGS = $(TEST_CPPFLAGS)
tests_check_notify_LDADD = $(TEST_LIBS)

tests_check_session_SOURCES = %D%/check_session.c
tests_check_session_CFLAGS = $(TEST_CFLAGS)
tests_check_session_CPPFLAGS = $(TEST_CPPFLAGS)
tests_check_session_LDADD = $(TEST_LIBS)

tests_check_spool_SOURCES = %D%/check_spool.c
tests_check_spool_CFLAGS = $(TEST_CFLAGS)
tests_check_spool_CPPFLAGS = $(TEST_CPPFLAGS)
tests_check_spool_LDADD = $(TEST_LIBS)

tests_check_io_SOURCES = %D%/check_io.c
tests_check_io_CFLAGS = $(TEST_CFLAGS)
tests_check_io_CPPFLAGS = $(TEST_CPPFLAGS)
tests_check_io_LDADD = $(TEST_LIBS)

tests_check_deliver_SOURCES = %D%/check_deliver.c
tests_check_deliver_CFLAGS = $(TEST_CFLAGS)
tests_check_deliver_CPPFLAGS = $(TEST_CPPFLAGS)
tests_check_deliver_LDADD = $(TEST_LIBS)

# End-to-end tests: Python unittest modules run against the built daemon.
# Each is one test of the automake harness; tests/e2e/run wraps it.
E2E_TESTS = \
	tests/e2e/test_smtp.py \
	tests/e2e/test_idle.py \
	tests/e2e/test_hostile.py \
	tests/e2e/test_clients.py \
	tests/e2e/test_load.py \
	tests/e2e/test_config.py \
	tests/e2e/test_logger.py \
	tests/e2e/test_relay.py \
	tests/e2e/test_inspect.py \
	tests/e2e/test_crash.py \
	tests/e2e/test_durability_order.py \
	tests/e2e/test_diskfull.py \
	tests/e2e/test_hostile_table.py \
	tests/e2e/test_stress.py \
	tests/e2e/test_streaming.py \
	tests/e2e/test_robustness.py \
	tests/e2e/test_notify.py \
	tests/e2e/test_dovecot.py \
	tests/e2e/test_startup.py \
	tests/e2e/test_delivery.py \
	tests/e2e/test_dsn.py \
	tests/e2e/test_extensions.py \
	tests/e2e/test_scaleout.py \
	tests/e2e/test_tls.py \
	tests/e2e/test_delivery_tls.py \
	tests/e2e/test_resolver.py

TESTS += $(UNIT_TESTS) $(E2E_TESTS)
TEST_EXTENSIONS = .py
PY_LOG_COMPILER = $(top_srcdir)/tests/e2e/run
AM_TESTS_ENVIRONMENT = \
	POLLSMTPD='$(abs_top_builddir)/src/pollsmtpd/pollsmtpd'; \
	PYTHON3='$(PYTHON3)'; \
	MAILDIR_INSPECT='$(abs_top_builddir)/src/maildir-inspect/maildir-inspect'; \
	TEST_SRCDIR='$(abs_top_srcdir)/tests'; \
	export POLLSMTPD MAILDIR_INSPECT PYTHON3 TEST_SRCDIR;
# Built with --enable-sanitizers: ASan's shadow memory and quarantine
# inflate RSS, so the end-to-end tests relax their memory bounds.
if SANITIZERS
AM_TESTS_ENVIRONMENT += E2E_SANITIZERS=yes; export E2E_SANITIZERS;
endif

# Named one by one: a directory would carry the logs of an in-tree run.
EXTRA_DIST += %D%/transcripts %D%/transcripts-client %D%/e2e/run %D%/e2e/harness.py $(E2E_TESTS)

# For .ci/run: the end-to-end tests alone (run again under valgrind).
print-e2e-tests:
	@echo $(E2E_TESTS)
.PHONY: print-e2e-tests
