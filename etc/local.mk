# etc/local.mk - configuration files, with paths from configure.

pkgsysconfdir = $(sysconfdir)/pollsmtpd
spooldir = $(localstatedir)/spool/pollsmtpd
pkglogdir = $(localstatedir)/log/pollsmtpd

EXTRA_DIST += %D%/pollsmtpd.conf.in %D%/pollsmtpd-dev.conf.in
noinst_DATA = %D%/pollsmtpd.conf
CLEANFILES += %D%/pollsmtpd.conf %D%/pollsmtpd-dev.conf

# Paths go into the files at make time, so that `make prefix=...` works.
edit_conf = sed \
	-e 's|@SPOOLDIR[@]|$(spooldir)|g' \
	-e 's|@LOGDIR[@]|$(pkglogdir)|g' \
	-e 's|@RUNDIR[@]|$(runstatedir)|g'

%D%/pollsmtpd.conf: %D%/pollsmtpd.conf.in Makefile
	$(AM_V_GEN)$(MKDIR_P) $(@D) && $(edit_conf) $(srcdir)/%D%/pollsmtpd.conf.in > $@.tmp && mv $@.tmp $@

# make run: the daemon in the foreground on 127.0.0.1:2525, Maildir in
# ./run/Maildir, log records on the terminal.
%D%/pollsmtpd-dev.conf: %D%/pollsmtpd-dev.conf.in Makefile
	$(AM_V_GEN)$(MKDIR_P) $(@D) && sed \
	-e 's|@RUNDIR[@]|$(abs_top_builddir)/run|g' \
	-e "s|@USER[@]|`id -un`|g" \
	-e "s|@GROUP[@]|`id -gn`|g" \
	$(srcdir)/%D%/pollsmtpd-dev.conf.in > $@.tmp && mv $@.tmp $@

run: src/pollsmtpd/pollsmtpd %D%/pollsmtpd-dev.conf
	$(MKDIR_P) run
	src/pollsmtpd/pollsmtpd -f -c %D%/pollsmtpd-dev.conf

clean-local: clean-run
clean-run:
	-rm -rf run
.PHONY: run clean-run
