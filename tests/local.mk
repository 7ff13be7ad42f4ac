# tests/local.mk - Check suites per module and end-to-end tests against
# the built daemon.

TEST_CFLAGS = $(AM_CFLAGS) $(CHECK_CFLAGS) $(LIBCONFIG_CFLAGS)
TEST_CPPFLAGS = $(AM_CPPFLAGS) -I$(top_srcdir)/src/pollsmtpd \
	-DTEST_SRCDIR='"$(abs_top_srcdir)/tests"'
TEST_LIBS = src/pollsmtpd/libsmtpd.la lib/libpollsmtpd.la \
	$(CHECK_LIBS) $(LIBCONFIG_LIBS) $(OPENSSL_LIBS)

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
	tests/check_conn
# The TLS io and context, against an OpenSSL client in the same process.
if HAVE_OPENSSL
UNIT_TESTS += tests/check_tls
endif
check_PROGRAMS += $(UNIT_TESTS)

tests_check_tls_SOURCES = %D%/check_tls.c
tests_check_tls_CFLAGS = $(TEST_CFLAGS) $(OPENSSL_CFLAGS)
tests_check_tls_CPPFLAGS = $(TEST_CPPFLAGS)
tests_check_tls_LDADD = $(TEST_LIBS)

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

tests_check_session_SOURCES = %D%/check_session.c
tests_check_session_CFLAGS = $(TEST_CFLAGS)
tests_check_session_CPPFLAGS = $(TEST_CPPFLAGS)
tests_check_session_LDADD = $(TEST_LIBS)

# End-to-end tests: Python unittest modules run against the built daemon.
# Each is one test of the automake harness; tests/e2e/run wraps it.
E2E_TESTS = \
	tests/e2e/test_smtp.py \
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
	tests/e2e/test_tls.py

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
EXTRA_DIST += %D%/transcripts %D%/e2e/run %D%/e2e/harness.py $(E2E_TESTS)

# For .ci/run: the end-to-end tests alone (run again under valgrind).
print-e2e-tests:
	@echo $(E2E_TESTS)
.PHONY: print-e2e-tests
