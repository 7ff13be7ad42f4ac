#!/bin/bash
# tests/packaging/rpm-test.sh - make rpm, and what the package holds.
#
#   tests/packaging/rpm-test.sh [BUILDDIR]
#
# make rpm builds the binary RPM with rpmbuild from `make dist`'s tarball
# (%check runs make check). rpm -qpl must list exactly the expected
# files; the configuration files, the ownership of the spool and log
# directories, the scriptlets (user in %pre, systemd in %post, %preun,
# %postun) and the paths inside the unit and configuration are checked.
# Environment: RPMBUILD_FLAGS (e.g. '--without check') goes to rpmbuild.

TEST_NAME=rpm-test
. "$(dirname "$0")/lib.sh"

need make rpm rpmbuild rpm2cpio cpio
init_builddir "${1:-}"

WORK=$(mktemp -d /tmp/pollsmtpd-rpm-test.XXXXXX) || die "mktemp"
trap 'rm -rf "$WORK"' EXIT

version=$(make_var PACKAGE_VERSION)
if make -C "$BUILDDIR" rpm RPMBUILD_FLAGS="${RPMBUILD_FLAGS:-}" > "$WORK/build.log" 2>&1; then
	pass "make rpm"
else
	show_build_failure "$WORK/build.log" "make rpm"
	finish
	exit
fi
pkg=$(ls "$BUILDDIR"/packaging/build/rpm/RPMS/*/pollsmtpd-"$version"-1*.rpm 2>/dev/null | grep -v -- -debug | head -n 1)
check "make rpm made pollsmtpd-$version-1.*.rpm" test -f "$pkg"
[ -f "$pkg" ] || { finish; exit; }
case " ${RPMBUILD_FLAGS:-} " in
*" --without check "*) skip "%check: RPMBUILD_FLAGS has --without check" ;;
*) check "the %check section ran make check" eval \
	'sed -n "/^Executing(%check)/,/^Processing files:/p" "$WORK/build.log" | grep -Eq "^# PASS: +[1-9]"' ;;
esac

check_eq "License" "$(rpm -qp --qf '%{LICENSE}' "$pkg" 2>/dev/null)" ISC
check_eq "Packager's address in the changelog" "$(rpm -qp --changelog "$pkg" 2>/dev/null | sed -n '1s/^\* [A-Za-z]* [A-Za-z]* [0-9]* [0-9]* \(.*>\).*/\1/p')" \
	"pollsmtpd developers <pollsmtpd@example.org>"
check_eq "version" "$(rpm -qp --qf '%{VERSION}-%{RELEASE}' "$pkg" 2>/dev/null | cut -d. -f1-3)" "$version-1"

# Build-id links are the build system's, not ours; the documentation and
# licence directories are pollsmtpd-VERSION where %_docdir_fmt says so
# (rpm on Debian);
# manual pages may be compressed.
rpm -qpl "$pkg" 2>/dev/null | grep -v '^/usr/lib/\.build-id' |
	sed -e 's/\.gz$//' -e "s#^/usr/share/\(doc\|licenses\)/pollsmtpd-$version#/usr/share/\1/pollsmtpd#" |
	LC_ALL=C sort > "$WORK/files"
LC_ALL=C sort > "$WORK/expected" <<LIST
/etc/logrotate.d/pollsmtpd
/etc/pollsmtpd
/etc/pollsmtpd/pollsmtpd.conf
/usr/bin/maildir-inspect
/usr/lib/systemd/system/pollsmtpd.service
/usr/sbin/pollsmtpd
/usr/share/doc/pollsmtpd
/usr/share/doc/pollsmtpd/README.md
/usr/share/doc/pollsmtpd/dovecot.md
/usr/share/doc/pollsmtpd/pollsmtpd.conf
/usr/share/licenses/pollsmtpd
/usr/share/licenses/pollsmtpd/COPYING
/usr/share/man/man1/maildir-inspect.1
/usr/share/man/man5/pollsmtpd.conf.5
/usr/share/man/man8/pollsmtpd.8
/var/log/pollsmtpd
/var/spool/pollsmtpd
LIST
if diff -u "$WORK/expected" "$WORK/files"; then
	pass "rpm -qpl lists exactly the $(wc -l < "$WORK/expected") expected paths"
else
	fail "rpm -qpl differs from the expected list (diff above: - missing, + unexpected)"
fi
check_eq "rpm -qpc: the configuration files" "$(rpm -qpc "$pkg" 2>/dev/null | LC_ALL=C sort | tr '\n' ' ')" \
	"/etc/logrotate.d/pollsmtpd /etc/pollsmtpd/pollsmtpd.conf "
rpm -qp --qf '[%{FILENAMES} %{FILEUSERNAME} %{FILEGROUPNAME} %{FILEMODES:perms} %{FILEFLAGS:fflags}\n]' "$pkg" \
	> "$WORK/attrs" 2>/dev/null
check "the configuration is %config(noreplace)" grep -q '^/etc/pollsmtpd/pollsmtpd.conf root root -rw-r--r-- cn$' "$WORK/attrs"
for dir in /var/spool/pollsmtpd /var/log/pollsmtpd; do
	check "$dir belongs to pollsmtpd, mode 0750" grep -q "^$dir pollsmtpd pollsmtpd drwxr-x--- " "$WORK/attrs"
done
check "/usr/sbin/pollsmtpd is root's, mode 0755" grep -q '^/usr/sbin/pollsmtpd root root -rwxr-xr-x ' "$WORK/attrs"

rpm -qp --scripts "$pkg" > "$WORK/scripts" 2>/dev/null
check "%pre makes the group" grep -q 'groupadd -r pollsmtpd' "$WORK/scripts"
check "%pre makes the system user" grep -q 'useradd -r -g pollsmtpd' "$WORK/scripts"
# scriptlet NAME - the body of one scriptlet in rpm --scripts' output
scriptlet() {
	awk -v want="$1" '/^[a-z]+ scriptlet/ { on = ($1 == want); next } on' "$WORK/scripts"
}
# The systemd macros (or our stand-ins) name the unit; they differ in
# how they do it (systemctl, systemd-update-helper).
check "%post acts on pollsmtpd.service at installation" eval 'scriptlet postinstall | grep -q "pollsmtpd\.service"'
check "%preun acts on pollsmtpd.service at removal" eval 'scriptlet preuninstall | grep -q "pollsmtpd\.service"'
check "%postun acts on pollsmtpd.service after an upgrade" eval 'scriptlet postuninstall | grep -q "pollsmtpd\.service"'
for s in preinstall postinstall preuninstall postuninstall; do
	check "the $s scriptlet is valid shell" eval "scriptlet $s | sh -n"
done

mkdir -p "$WORK/root"
(cd "$WORK/root" && rpm2cpio "$pkg" | cpio -idm --quiet) || fail "rpm2cpio | cpio"
check_eq "unit: ExecStart" "$(grep '^ExecStart=' "$WORK/root/usr/lib/systemd/system/pollsmtpd.service" 2>/dev/null)" \
	"ExecStart=/usr/sbin/pollsmtpd -f -c /etc/pollsmtpd/pollsmtpd.conf"
check_eq "unit: ReadWritePaths" "$(grep '^ReadWritePaths=' "$WORK/root/usr/lib/systemd/system/pollsmtpd.service" 2>/dev/null)" \
	"ReadWritePaths=/var/spool/pollsmtpd /var/log/pollsmtpd"
check "configuration: the spool is /var/spool/pollsmtpd" grep -q '"/var/spool/pollsmtpd"' "$WORK/root/etc/pollsmtpd/pollsmtpd.conf"
check "configuration: the pid file is /run/pollsmtpd.pid" grep -q '"/run/pollsmtpd.pid"' "$WORK/root/etc/pollsmtpd/pollsmtpd.conf"
if [ -x "$WORK/root/usr/sbin/pollsmtpd" ]; then
	check_config_test "the packaged pollsmtpd -t accepts the packaged configuration" \
		"$WORK/root/usr/sbin/pollsmtpd" "$WORK/root/etc/pollsmtpd/pollsmtpd.conf"
fi

finish
