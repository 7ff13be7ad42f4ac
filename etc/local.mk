# etc/local.mk - configuration files, with paths from configure.

pkgsysconfdir = $(sysconfdir)/pollsmtpd
spooldir = $(localstatedir)/spool/pollsmtpd
pkglogdir = $(localstatedir)/log/pollsmtpd
pidfile = $(runstatedir)/pollsmtpd.pid
logrotatedir = $(sysconfdir)/logrotate.d
# The unprivileged user and group the daemon runs as: server.user and
# server.group of the installed configuration, User= and Group= of the
# systemd unit, and the owner of the spool and log directories.
pollsmtpd_user = pollsmtpd
pollsmtpd_group = pollsmtpd

EXTRA_DIST += %D%/pollsmtpd.conf.in %D%/pollsmtpd-dev.conf.in \
	%D%/pollsmtpd.service.in %D%/pollsmtpd.init.in %D%/pollsmtpd.logrotate.in
noinst_DATA = %D%/pollsmtpd.conf
CLEANFILES += %D%/pollsmtpd.conf %D%/pollsmtpd-dev.conf

# Paths go into the files at make time, so that `make prefix=...` works.
edit_conf = sed \
	-e 's|@SPOOLDIR[@]|$(spooldir)|g' \
	-e 's|@LOGDIR[@]|$(pkglogdir)|g' \
	-e 's|@RUNDIR[@]|$(runstatedir)|g' \
	-e 's|@USER[@]|$(pollsmtpd_user)|g' \
	-e 's|@GROUP[@]|$(pollsmtpd_group)|g'

%D%/pollsmtpd.conf: %D%/pollsmtpd.conf.in Makefile
	$(AM_V_GEN)$(MKDIR_P) $(@D) && $(edit_conf) $(srcdir)/%D%/pollsmtpd.conf.in > $@.tmp && mv $@.tmp $@

# The service files: a systemd unit, a SysV init script and a logrotate
# file. They are made under etc/init.d/ and etc/logrotate.d/ so that
# they install under the names those directories expect.
edit_service = sed \
	-e 's|@sbindir[@]|$(sbindir)|g' \
	-e 's|@pkgsysconfdir[@]|$(pkgsysconfdir)|g' \
	-e 's|@spooldir[@]|$(spooldir)|g' \
	-e 's|@logdir[@]|$(pkglogdir)|g' \
	-e 's|@pidfile[@]|$(pidfile)|g' \
	-e 's|@logrotatedir[@]|$(logrotatedir)|g' \
	-e 's|@user[@]|$(pollsmtpd_user)|g' \
	-e 's|@group[@]|$(pollsmtpd_group)|g' \
	-e 's|@PACKAGE_VERSION[@]|$(PACKAGE_VERSION)|g'

%D%/pollsmtpd.service: %D%/pollsmtpd.service.in Makefile
	$(AM_V_GEN)$(MKDIR_P) $(@D) && $(edit_service) $(srcdir)/%D%/pollsmtpd.service.in > $@.tmp && mv $@.tmp $@
%D%/init.d/pollsmtpd: %D%/pollsmtpd.init.in Makefile
	$(AM_V_GEN)$(MKDIR_P) $(@D) && $(edit_service) $(srcdir)/%D%/pollsmtpd.init.in > $@.tmp && chmod +x $@.tmp && mv $@.tmp $@
%D%/logrotate.d/pollsmtpd: %D%/pollsmtpd.logrotate.in Makefile
	$(AM_V_GEN)$(MKDIR_P) $(@D) && $(edit_service) $(srcdir)/%D%/pollsmtpd.logrotate.in > $@.tmp && mv $@.tmp $@

# All three are made even when configure said not to install one, so
# that tests and packages can look at them.
noinst_DATA += %D%/pollsmtpd.service %D%/init.d/pollsmtpd %D%/logrotate.d/pollsmtpd
CLEANFILES += %D%/pollsmtpd.service %D%/init.d/pollsmtpd %D%/logrotate.d/pollsmtpd
if INSTALL_SYSTEMD_UNIT
systemdsystemunit_DATA = %D%/pollsmtpd.service
endif
if INSTALL_INITSCRIPT
initscript_SCRIPTS = %D%/init.d/pollsmtpd
endif
logrotate_DATA = %D%/logrotate.d/pollsmtpd

# The configuration is the administrator's once installed: `make install`
# never overwrites it, and `make uninstall` removes it only while it is
# still the file install put there. The spool and log directories are
# made and removed again by uninstall when they are empty. Installed
# for real (no DESTDIR) by root, they are given to the daemon's user, as
# the packages do: the daemon, running as that user, writes the Maildir
# tree, and its logger must make a new log file after a rotation. Under
# DESTDIR (a package build) that is the package's business.
install-data-local: %D%/pollsmtpd.conf
	@$(NORMAL_INSTALL)
	$(MKDIR_P) "$(DESTDIR)$(pkgsysconfdir)" "$(DESTDIR)$(spooldir)" "$(DESTDIR)$(pkglogdir)"
	@if test -z "$(DESTDIR)" && test "`id -u`" -eq 0; then \
	  if id -u "$(pollsmtpd_user)" >/dev/null 2>&1; then \
	    echo " chown $(pollsmtpd_user):$(pollsmtpd_group) '$(spooldir)' '$(pkglogdir)'"; \
	    chown "$(pollsmtpd_user):$(pollsmtpd_group)" "$(spooldir)" "$(pkglogdir)" \
	      && chmod 0750 "$(spooldir)" "$(pkglogdir)" || exit 1; \
	  else \
	    echo "make install: there is no user $(pollsmtpd_user): create it, then run make install again"; \
	    echo "  (useradd --system --user-group --home-dir $(spooldir) --shell /usr/sbin/nologin $(pollsmtpd_user))"; \
	  fi; \
	fi
	@conf="$(DESTDIR)$(pkgsysconfdir)/pollsmtpd.conf"; \
	if test -f "$$conf" || test -h "$$conf"; then \
	  echo "keeping the existing $$conf (the new default is etc/pollsmtpd.conf)"; \
	else \
	  echo " $(INSTALL_DATA) etc/pollsmtpd.conf '$$conf'"; \
	  $(INSTALL_DATA) %D%/pollsmtpd.conf "$$conf" || exit 1; \
	fi

uninstall-local:
	@$(NORMAL_UNINSTALL)
	@conf="$(DESTDIR)$(pkgsysconfdir)/pollsmtpd.conf"; \
	if test -f "$$conf" && test -f %D%/pollsmtpd.conf && cmp -s %D%/pollsmtpd.conf "$$conf"; then \
	  echo " rm -f '$$conf'"; rm -f "$$conf"; \
	elif test -f "$$conf"; then \
	  echo "keeping $$conf: it is not the file install put there"; \
	fi
	-@for d in "$(DESTDIR)$(pkgsysconfdir)" "$(DESTDIR)$(spooldir)" "$(DESTDIR)$(pkglogdir)"; do \
	  test ! -d "$$d" || rmdir "$$d" 2>/dev/null || echo "keeping $$d: not empty"; \
	done

# make run: the daemon in the foreground on 127.0.0.1:2525, Maildir in
# ./run/Maildir, log records on the terminal.
%D%/pollsmtpd-dev.conf: %D%/pollsmtpd-dev.conf.in Makefile
	$(AM_V_GEN)$(MKDIR_P) $(@D) && sed \
	-e 's|@RUNDIR[@]|$(abs_top_builddir)/run|g' \
	-e "s|@USER[@]|`if [ \`id -u\` -eq 0 ]; then echo nobody; else id -un; fi`|g" \
	-e "s|@GROUP[@]|`if [ \`id -u\` -eq 0 ]; then id -gn nobody; else id -gn; fi`|g" \
	$(srcdir)/%D%/pollsmtpd-dev.conf.in > $@.tmp && mv $@.tmp $@

run: src/pollsmtpd/pollsmtpd %D%/pollsmtpd-dev.conf
	$(MKDIR_P) run
	src/pollsmtpd/pollsmtpd -f -c %D%/pollsmtpd-dev.conf

clean-local: clean-run
clean-run:
	-rm -rf run
.PHONY: run clean-run
