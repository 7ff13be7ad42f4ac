# fuzz/local.mk - libFuzzer harnesses.
#
# `make check` replays the seed corpora and past crash inputs through each
# harness, built normally and linked with the convenience libraries.
# `make fuzz` builds the harnesses with clang's libFuzzer, ASan and UBSan
# (from the sources, a separately instrumented build) and runs each for
# FUZZ_SECONDS; new crash inputs go to fuzz/crashes/.

FUZZ_TARGETS = session addr queuefile
FUZZ_SECONDS = 60
FUZZ_CC = clang
FUZZ_CFLAGS = -std=gnu11 -g -O1 -fsanitize=fuzzer,address,undefined \
	-fno-sanitize-recover=all -I$(top_srcdir)/lib \
	-I$(top_srcdir)/src/pollsmtpd -I$(top_builddir) $(LIBCONFIG_CFLAGS) \
	$(LIBIDN2_CFLAGS)
FUZZ_LIBSRC = $(top_srcdir)/lib/buf.c $(top_srcdir)/lib/log.c \
	$(top_srcdir)/lib/conf.c $(top_srcdir)/lib/addr.c \
	$(top_srcdir)/lib/maildir.c $(top_srcdir)/lib/queuefile.c

FUZZ_REPLAY = fuzz/replay_session fuzz/replay_addr fuzz/replay_queuefile
check_PROGRAMS += $(FUZZ_REPLAY)
fuzz_replay_session_SOURCES = %D%/replay.c %D%/fuzz_session.c
fuzz_replay_session_CPPFLAGS = $(TEST_CPPFLAGS)
fuzz_replay_session_CFLAGS = $(TEST_CFLAGS)
fuzz_replay_session_LDADD = $(TEST_LIBS)
fuzz_replay_addr_SOURCES = %D%/replay.c %D%/fuzz_addr.c
fuzz_replay_addr_CPPFLAGS = $(TEST_CPPFLAGS)
fuzz_replay_addr_CFLAGS = $(TEST_CFLAGS)
fuzz_replay_addr_LDADD = $(TEST_LIBS)
fuzz_replay_queuefile_SOURCES = %D%/replay.c %D%/fuzz_queuefile.c
fuzz_replay_queuefile_CPPFLAGS = $(TEST_CPPFLAGS)
fuzz_replay_queuefile_CFLAGS = $(TEST_CFLAGS)
fuzz_replay_queuefile_LDADD = $(TEST_LIBS)

TESTS += fuzz/replay.test
EXTRA_DIST += %D%/corpus %D%/regress %D%/replay.test

fuzz/fuzz_session: $(top_srcdir)/fuzz/fuzz_session.c $(FUZZ_LIBSRC) \
	$(top_srcdir)/src/pollsmtpd/session.c
	$(AM_V_CC)$(MKDIR_P) fuzz && $(FUZZ_CC) $(FUZZ_CFLAGS) -o $@ \
		$(top_srcdir)/fuzz/fuzz_session.c $(FUZZ_LIBSRC) \
		$(top_srcdir)/src/pollsmtpd/session.c $(LIBCONFIG_LIBS) \
		$(LIBIDN2_LIBS) $(LIBS)
fuzz/fuzz_addr: $(top_srcdir)/fuzz/fuzz_addr.c $(top_srcdir)/lib/addr.c
	$(AM_V_CC)$(MKDIR_P) fuzz && $(FUZZ_CC) $(FUZZ_CFLAGS) -o $@ \
		$(top_srcdir)/fuzz/fuzz_addr.c $(top_srcdir)/lib/addr.c \
		$(LIBIDN2_LIBS)
fuzz/fuzz_queuefile: $(top_srcdir)/fuzz/fuzz_queuefile.c $(top_srcdir)/lib/queuefile.c
	$(AM_V_CC)$(MKDIR_P) fuzz && $(FUZZ_CC) $(FUZZ_CFLAGS) -o $@ \
		$(top_srcdir)/fuzz/fuzz_queuefile.c $(FUZZ_LIBSRC) \
		$(LIBCONFIG_LIBS) $(LIBIDN2_LIBS) $(LIBS)

fuzz: fuzz/fuzz_session fuzz/fuzz_addr fuzz/fuzz_queuefile
	@set -e; for t in $(FUZZ_TARGETS); do \
		rm -rf fuzz/work/$$t; $(MKDIR_P) fuzz/work/$$t fuzz/crashes/$$t; \
		cp $(top_srcdir)/fuzz/corpus/$$t/* fuzz/work/$$t/; \
		echo "fuzz: $$t for $(FUZZ_SECONDS) s"; \
		./fuzz/fuzz_$$t -max_total_time=$(FUZZ_SECONDS) -timeout=10 \
			-rss_limit_mb=2048 -print_final_stats=1 \
			-artifact_prefix=fuzz/crashes/$$t/ fuzz/work/$$t; \
	done

clean-local: clean-fuzz
clean-fuzz:
	-rm -rf fuzz/work fuzz/crashes fuzz/fuzz_session fuzz/fuzz_addr fuzz/fuzz_queuefile
.PHONY: fuzz clean-fuzz
