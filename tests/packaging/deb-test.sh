#!/bin/bash
# tests/packaging/deb-test.sh - make deb, lintian, and dpkg's life cycle.
#
#   tests/packaging/deb-test.sh [BUILDDIR]      (as root, on Debian/Ubuntu)
#
# make deb builds the package from `make dist`'s tarball; lintian must
# find no error and no warning. Then on this machine: dpkg -i (the
# pollsmtpd user, its spool and log directories, the conffiles, the
# service registrations), `pollsmtpd -t` on the installed configuration,
# remove keeping an edited conffile, reinstall, purge leaving nothing
# (but mail, which is never deleted), and install and purge once more.
# Services are not started meanwhile (policy-rc.d): the packaged
# configuration listens on port 25 of the loopback addresses, which a
# mail server of this machine may hold.
# Environment: DEB_BUILD_OPTIONS (e.g. nocheck) is passed to the build.

TEST_NAME=deb-test
. "$(dirname "$0")/lib.sh"

need_root
need make dpkg dpkg-buildpackage dpkg-deb lintian dh
init_builddir "${1:-}"

WORK=$(mktemp -d /tmp/pollsmtpd-deb-test.XXXXXX) || die "mktemp"
POLICY=/usr/sbin/policy-rc.d
OUR_POLICY=
USER_EXISTED=
getent passwd pollsmtpd >/dev/null && USER_EXISTED=yes
cleanup() {
	dpkg --purge pollsmtpd >/dev/null 2>&1
	rm -rf /var/spool/pollsmtpd/alice/new/*.PACKAGETEST.* 2>/dev/null
	find /var/spool/pollsmtpd -depth -type d -empty -delete 2>/dev/null
	if [ -z "$USER_EXISTED" ] && getent passwd pollsmtpd >/dev/null; then
		userdel pollsmtpd 2>/dev/null
		getent group pollsmtpd >/dev/null && groupdel pollsmtpd 2>/dev/null
	fi
	[ -n "$OUR_POLICY" ] && rm -f "$POLICY"
	rm -rf "$WORK"
}
trap cleanup EXIT

if dpkg-query -W -f='${Status}' pollsmtpd 2>/dev/null | grep -q installed; then
	die "pollsmtpd is installed on this machine already; remove it first"
fi
if [ ! -e "$POLICY" ]; then
	printf '#!/bin/sh\n# deb-test.sh: no service starts during the test\nexit 101\n' > "$POLICY"
	chmod 0755 "$POLICY"
	OUR_POLICY=yes
fi

# --- 1. build and lintian
version=$(make_var PACKAGE_VERSION)
if make -C "$BUILDDIR" deb > "$WORK/build.log" 2>&1; then
	pass "make deb"
else
	show_build_failure "$WORK/build.log" "make deb"
	finish
	exit
fi
outdir=$BUILDDIR/packaging/build/deb
deb=$(ls "$outdir"/pollsmtpd_"$version"-*_*.deb 2>/dev/null | head -n 1)
changes=$(ls "$outdir"/pollsmtpd_"$version"-*_*.changes 2>/dev/null | head -n 1)
check "make deb made pollsmtpd_$version-*.deb" test -f "$deb"
check "... with a .changes (source and binary)" test -f "$changes"
check "... and a 3.0 (quilt) source package from the dist tarball" \
	test -f "$outdir/pollsmtpd_$version.orig.tar.gz" -a -n "$(ls "$outdir"/pollsmtpd_"$version"-*.debian.tar.* 2>/dev/null)"
lintian --fail-on error,warning --display-info "$changes" > "$WORK/lintian.log" 2>&1
rc=$?
sed 's/^/    lintian: /' "$WORK/lintian.log"
check_eq "lintian --fail-on error,warning" "$rc" 0

# --- 2. what the package holds
dpkg-deb -c "$deb" | awk '{print $6}' | sed 's|^\./|/|; s|/$||' | LC_ALL=C sort > "$WORK/contents"
for f in /usr/sbin/pollsmtpd /usr/bin/maildir-inspect /etc/pollsmtpd/pollsmtpd.conf \
    /lib/systemd/system/pollsmtpd.service /etc/init.d/pollsmtpd /etc/logrotate.d/pollsmtpd \
    /usr/share/man/man8/pollsmtpd.8.gz /usr/share/man/man5/pollsmtpd.conf.5.gz \
    /usr/share/man/man1/maildir-inspect.1.gz /usr/share/doc/pollsmtpd/copyright; do
	check "the .deb holds $f" grep -qx "$f" "$WORK/contents"
done
for f in README.md dovecot.md README.Debian examples/pollsmtpd.conf; do
	check "the .deb holds /usr/share/doc/pollsmtpd/$f" grep -Eqx "/usr/share/doc/pollsmtpd/$f(\.gz)?" "$WORK/contents"
done
check "the .deb does not hold /var/spool/pollsmtpd (postinst makes it)" eval '! grep -q "^/var/spool" "$WORK/contents"'
dpkg-deb -f "$deb" Depends > "$WORK/depends"
check "it depends on adduser" grep -q adduser "$WORK/depends"
check "it depends on libconfig" grep -q libconfig "$WORK/depends"

# --- 3. install
if dpkg -i "$deb" > "$WORK/dpkg.log" 2>&1; then pass "dpkg -i"; else cat "$WORK/dpkg.log"; fail "dpkg -i"; fi
check "the pollsmtpd system user exists" eval "getent passwd pollsmtpd >/dev/null"
uid=$(id -u pollsmtpd 2>/dev/null)
check "... and is a system user (uid $uid < 1000)" test "${uid:-1000}" -lt 1000
check_eq "... with no login shell" "$(getent passwd pollsmtpd | cut -d: -f7)" /usr/sbin/nologin
for dir in /var/spool/pollsmtpd /var/log/pollsmtpd; do
	check_eq "$dir: owner, group, mode" "$(stat -c '%U %G %a' "$dir" 2>&1)" "pollsmtpd pollsmtpd 750"
done
dpkg-query -W -f='${Conffiles}\n' pollsmtpd | awk 'NF {print $1}' | LC_ALL=C sort > "$WORK/conffiles"
for f in /etc/pollsmtpd/pollsmtpd.conf /etc/init.d/pollsmtpd /etc/logrotate.d/pollsmtpd; do
	check "$f is a conffile" grep -qx "$f" "$WORK/conffiles"
done
check "pollsmtpd -t (the default configuration path)" /usr/sbin/pollsmtpd -t
check "pollsmtpd -t -c /etc/pollsmtpd/pollsmtpd.conf" /usr/sbin/pollsmtpd -t -c /etc/pollsmtpd/pollsmtpd.conf
check "the configuration names /var/spool/pollsmtpd" grep -q '"/var/spool/pollsmtpd"' /etc/pollsmtpd/pollsmtpd.conf
check "the configuration names /run/pollsmtpd.pid" grep -q '"/run/pollsmtpd.pid"' /etc/pollsmtpd/pollsmtpd.conf
check "the configuration listens on 127.0.0.1 and ::1 only" \
	grep -q '^[[:space:]]*listen[[:space:]]*=[[:space:]]*\[ "127.0.0.1:25", "\[::1\]:25" \];' /etc/pollsmtpd/pollsmtpd.conf
check "... and says so in its first lines" eval 'head -n 8 /etc/pollsmtpd/pollsmtpd.conf | grep -q "LISTENS ON LOOPBACK ONLY"'
check "README.Debian says so too" eval 'zcat -f /usr/share/doc/pollsmtpd/README.Debian* | grep -q "127.0.0.1:25 and \[::1\]:25 only"'
check "the example configuration is the shipped one" eval 'zcat -f /usr/share/doc/pollsmtpd/examples/pollsmtpd.conf* | cmp -s - /etc/pollsmtpd/pollsmtpd.conf'
check "the copyright file is the ISC licence" eval 'grep -q "^License: ISC" /usr/share/doc/pollsmtpd/copyright && ! grep -qi unlicensed /usr/share/doc/pollsmtpd/copyright'
check "update-rc.d registered the init script" eval 'ls /etc/rc2.d/S*pollsmtpd >/dev/null 2>&1'
check "the systemd unit is enabled" test -L /etc/systemd/system/multi-user.target.wants/pollsmtpd.service
if command -v systemd-analyze >/dev/null 2>&1; then
	if systemd-analyze verify /lib/systemd/system/pollsmtpd.service > "$WORK/verify.log" 2>&1 \
	    && ! grep -q . "$WORK/verify.log"; then
		pass "systemd-analyze verify /lib/systemd/system/pollsmtpd.service"
	else
		cat "$WORK/verify.log"
		fail "systemd-analyze verify /lib/systemd/system/pollsmtpd.service (above)"
	fi
else
	skip "systemd-analyze verify: no systemd-analyze here"
fi

# --- 4. remove keeps the edited conffile; reinstall keeps it too
echo '# edited by the administrator' >> /etc/pollsmtpd/pollsmtpd.conf
check "dpkg -r" eval 'dpkg -r pollsmtpd > "$WORK/dpkg.log" 2>&1'
check "the program is gone" test ! -e /usr/sbin/pollsmtpd
check "the edited conffile stays" grep -q '^# edited by the administrator' /etc/pollsmtpd/pollsmtpd.conf
check "dpkg -i again" eval 'dpkg -i "$deb" > "$WORK/dpkg.log" 2>&1'
check "the edited conffile is still the administrator's" grep -q '^# edited by the administrator' /etc/pollsmtpd/pollsmtpd.conf

# --- 5. purge: nothing left but mail
mkdir -p /var/spool/pollsmtpd/alice/new /var/spool/pollsmtpd/alice/cur /var/spool/pollsmtpd/bob/new
echo "Subject: keep me" > /var/spool/pollsmtpd/alice/new/1700000000.PACKAGETEST.host
check "dpkg --purge" eval 'dpkg --purge pollsmtpd > "$WORK/dpkg.log" 2>&1'
check_eq "dpkg forgot the package" "$(dpkg-query -W -f='${Status}' pollsmtpd 2>/dev/null)" ""
for f in /etc/pollsmtpd /etc/init.d/pollsmtpd /etc/logrotate.d/pollsmtpd /var/log/pollsmtpd \
    /lib/systemd/system/pollsmtpd.service /etc/systemd/system/multi-user.target.wants/pollsmtpd.service \
    /var/spool/pollsmtpd/bob /var/spool/pollsmtpd/alice/cur; do
	check "purge removed $f" test ! -e "$f"
done
check "purge left no rc link" eval '! ls /etc/rc?.d/*pollsmtpd >/dev/null 2>&1'
check "purge kept the stored letter" test -f /var/spool/pollsmtpd/alice/new/1700000000.PACKAGETEST.host
rm -rf /var/spool/pollsmtpd

# --- 6. install and purge once more (the user exists now)
check "dpkg -i after purge" eval 'dpkg -i "$deb" > "$WORK/dpkg.log" 2>&1'
check "pollsmtpd -t" /usr/sbin/pollsmtpd -t
check "dpkg --purge" eval 'dpkg --purge pollsmtpd > "$WORK/dpkg.log" 2>&1'
check "nothing left in /etc/pollsmtpd, /var/spool/pollsmtpd, /var/log/pollsmtpd" \
	test ! -e /etc/pollsmtpd -a ! -e /var/spool/pollsmtpd -a ! -e /var/log/pollsmtpd

finish
