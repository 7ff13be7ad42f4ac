#!/bin/bash
# tests/packaging/install-test.sh - `make install` checked file by file.
#
#   tests/packaging/install-test.sh [BUILDDIR]
#
# In a configured, built tree: make install DESTDIR=... lays out exactly
# the expected files with the expected modes and the configured paths
# inside; the installed configuration passes `pollsmtpd -t`; the systemd
# unit passes `systemd-analyze verify` (where there is one); a second
# install keeps an edited configuration; make uninstall removes the rest
# and leaves nothing of an unedited install. As root, the installed
# daemon also runs from the DESTDIR tree with a test configuration on a
# loopback port: it detaches, writes its pid file, accepts a message and
# no longer runs as root.

TEST_NAME=install-test
. "$(dirname "$0")/lib.sh"

need make python3 stat find
init_builddir "${1:-}"

WORK=$(mktemp -d /tmp/pollsmtpd-install-test.XXXXXX) || die "mktemp"
DAEMON_PID=
cleanup() {
	[ -n "$DAEMON_PID" ] && kill -TERM "$DAEMON_PID" 2>/dev/null
	rm -rf "$WORK"
}
trap cleanup EXIT
D=$WORK/destdir

sbindir=$(make_var sbindir)
bindir=$(make_var bindir)
sysconfdir=$(make_var sysconfdir)
mandir=$(make_var mandir)
localstatedir=$(make_var localstatedir)
runstatedir=$(make_var runstatedir)
unitdir=$(make_var systemdsystemunitdir)
initdir=$(make_var initscriptdir)
version=$(make_var PACKAGE_VERSION)
conf=$sysconfdir/pollsmtpd/pollsmtpd.conf
spooldir=$localstatedir/spool/pollsmtpd
logdir=$localstatedir/log/pollsmtpd
pidfile=$runstatedir/pollsmtpd.pid
echo "sbindir=$sbindir sysconfdir=$sysconfdir localstatedir=$localstatedir runstatedir=$runstatedir"
echo "systemdsystemunitdir=${unitdir:-(none)} initscriptdir=${initdir:-(none)}"

do_make() { make -s -C "$BUILDDIR" "$@" DESTDIR="$D" >"$WORK/make.log" 2>&1 || { cat "$WORK/make.log"; return 1; }; }

# installed_files - every file and link under DESTDIR, one a line, sorted
installed_files() { (cd "$D" 2>/dev/null && find . \( -type f -o -type l \) | sed 's|^\.||' | LC_ALL=C sort); }

# --- 1. install: exactly these files, with these modes
check "make install DESTDIR" do_make install
{
	echo "$sbindir/pollsmtpd 755"
	echo "$bindir/maildir-inspect 755"
	echo "$conf 644"
	echo "$sysconfdir/logrotate.d/pollsmtpd 644"
	echo "$mandir/man8/pollsmtpd.8 644"
	echo "$mandir/man5/pollsmtpd.conf.5 644"
	echo "$mandir/man1/maildir-inspect.1 644"
	[ -n "$unitdir" ] && echo "$unitdir/pollsmtpd.service 644"
	[ -n "$initdir" ] && echo "$initdir/pollsmtpd 755"
} | LC_ALL=C sort > "$WORK/expected"
cut -d' ' -f1 "$WORK/expected" > "$WORK/expected.names"
installed_files > "$WORK/installed"
if diff -u "$WORK/expected.names" "$WORK/installed"; then
	pass "exactly the expected $(wc -l < "$WORK/expected") files are installed"
else
	fail "installed files differ from the expected ones (diff above: - missing, + unexpected)"
fi
while read -r path mode; do
	if [ -f "$D$path" ]; then
		check_eq "mode of $path" "$(stat -c %a "$D$path")" "$mode"
	fi
done < "$WORK/expected"
for dir in "$spooldir" "$logdir" "$sysconfdir/pollsmtpd"; do
	check "directory $dir is made" test -d "$D$dir"
done

# --- 2. what is inside: configured paths, no placeholder left
for path in "$conf" "$sysconfdir/logrotate.d/pollsmtpd" ${unitdir:+"$unitdir/pollsmtpd.service"} \
    ${initdir:+"$initdir/pollsmtpd"}; do
	if grep -n '@[A-Za-z_]*@' "$D$path"; then
		fail "$path still has a placeholder (above)"
	else
		pass "$path has no placeholder left"
	fi
done
check "configuration: maildir.path is $spooldir" grep -q "^[[:space:]]*path[[:space:]]*=[[:space:]]*\"$spooldir\";" "$D$conf"
check "configuration: log.file is in $logdir" grep -q "^[[:space:]]*file[[:space:]]*=[[:space:]]*\"$logdir/pollsmtpd.log\";" "$D$conf"
check "configuration: listens on loopback only" grep -q '^[[:space:]]*listen[[:space:]]*=[[:space:]]*\[ "127.0.0.1:25", "\[::1\]:25" \];' "$D$conf"
check "configuration: says so in its first lines" eval 'head -n 8 "$D$conf" | grep -q "LISTENS ON LOOPBACK ONLY"'
check "configuration: server.user is pollsmtpd" grep -q '^[[:space:]]*user[[:space:]]*=[[:space:]]*"pollsmtpd";' "$D$conf"
check "configuration: pid_file is $pidfile" grep -q "^[[:space:]]*pid_file[[:space:]]*=[[:space:]]*\"$pidfile\";" "$D$conf"
if [ -n "$unitdir" ]; then
	unit=$D$unitdir/pollsmtpd.service
	check_eq "unit: ExecStart" "$(grep '^ExecStart=' "$unit")" "ExecStart=$sbindir/pollsmtpd -f -c $conf"
	check_eq "unit: ExecReload" "$(grep '^ExecReload=' "$unit")" 'ExecReload=/bin/kill -HUP $MAINPID'
	check_eq "unit: ReadWritePaths" "$(grep '^ReadWritePaths=' "$unit")" "ReadWritePaths=$spooldir $logdir"
	check_eq "unit: Type" "$(grep '^Type=' "$unit")" "Type=notify"
	for key in User=pollsmtpd Group=pollsmtpd NoNewPrivileges=yes ProtectSystem=strict PrivateTmp=yes \
	    ProtectHome=yes Restart=on-failure UMask=0077; do
		check "unit: $key" grep -qx "$key" "$unit"
	done
	check_eq "unit: CapabilityBoundingSet" "$(grep '^CapabilityBoundingSet=' "$unit")" \
		"CapabilityBoundingSet=CAP_NET_BIND_SERVICE"
	check_eq "unit: AmbientCapabilities" "$(grep '^AmbientCapabilities=' "$unit")" \
		"AmbientCapabilities=CAP_NET_BIND_SERVICE"
	if command -v systemd-analyze >/dev/null 2>&1; then
		# verify wants the programs named to exist: point at the DESTDIR ones.
		mkdir -p "$WORK/unit"
		sed "s|^ExecStart=$sbindir/|ExecStart=$D$sbindir/|" "$unit" > "$WORK/unit/pollsmtpd.service"
		if MANPATH="$D$mandir:" systemd-analyze verify "$WORK/unit/pollsmtpd.service" > "$WORK/verify.log" 2>&1 \
		    && ! grep -q . "$WORK/verify.log"; then
			pass "systemd-analyze verify pollsmtpd.service"
		else
			cat "$WORK/verify.log"
			fail "systemd-analyze verify pollsmtpd.service (above)"
		fi
	else
		skip "systemd-analyze verify: no systemd-analyze here"
	fi
fi
if [ -n "$initdir" ]; then
	init=$D$initdir/pollsmtpd
	check "init script: sh -n" sh -n "$init"
	check_eq "init script: DAEMON" "$(grep '^DAEMON=' "$init")" "DAEMON=$sbindir/pollsmtpd"
	check_eq "init script: CONFFILE" "$(grep '^CONFFILE=' "$init")" "CONFFILE=$conf"
	check_eq "init script: DEFAULT_PIDFILE" "$(grep '^DEFAULT_PIDFILE=' "$init")" "DEFAULT_PIDFILE=$pidfile"
	check "init script: LSB header" grep -q '^### BEGIN INIT INFO' "$init"
fi
check "logrotate: rotates $logdir/*.log" grep -q "^$logdir/\*\.log {" "$D$sysconfdir/logrotate.d/pollsmtpd"
check "logrotate: SIGHUP through $pidfile, to pollsmtpd only" grep -q "pkill -HUP -L -x -F $pidfile pollsmtpd" "$D$sysconfdir/logrotate.d/pollsmtpd"
for page in man8/pollsmtpd.8 man5/pollsmtpd.conf.5 man1/maildir-inspect.1; do
	check "$page is a manual page" grep -q '^\.TH ' "$D$mandir/$page"
done

# --- 3. the installed programs and configuration
daemon=$D$sbindir/pollsmtpd
check_eq "pollsmtpd -V" "$("$daemon" -V 2>&1)" "pollsmtpd $version"
check_config_test "pollsmtpd -t accepts the installed configuration" \
    "$daemon" "$D$conf"
# The check above can fail: a broken copy is refused with FILE:LINE.
{ cat "$D$conf"; echo 'no_such_key = 1;'; } > "$WORK/broken.conf"
"$daemon" -t -c "$WORK/broken.conf" > "$WORK/t.out" 2>&1
rc=$?
check_eq "pollsmtpd -t refuses a broken copy with 78" "$rc" 78
check "pollsmtpd -t names FILE:LINE" grep -q "^$WORK/broken.conf:[0-9]" "$WORK/t.out"
check "maildir-inspect runs" "$D$bindir/maildir-inspect" -h

# --- 4. as root: the installed daemon serves and drops root
if [ "$(id -u)" -eq 0 ]; then
	test_user
	port=$(free_port)
	run=$WORK/run-root
	mkdir -p "$run"
	test_config "$D$conf" "$run/test.conf" "$run" "$port"
	check "test configuration listens on 127.0.0.1:$port" grep -q "\"127.0.0.1:$port\"" "$run/test.conf"
	check "test configuration passes -t" "$daemon" -t -c "$run/test.conf"
	# Without -f: the parent returns once the daemon serves.
	check "the installed daemon starts detached (exit 0)" "$daemon" -c "$run/test.conf"
	DAEMON_PID=$(cat "$run/run/pollsmtpd.pid" 2>/dev/null)
	check "it wrote its pid file" test -n "$DAEMON_PID"
	if [ -n "$DAEMON_PID" ] && kill -0 "$DAEMON_PID" 2>/dev/null; then
		pass "pid $DAEMON_PID is alive"
		check "it serves as soon as the start returned" wait_port "$port" 1
		check_eq "it runs as $TEST_USER:$TEST_GROUP, not root (/proc/$DAEMON_PID/status)" "$(proc_ids "$DAEMON_PID")" \
			"$TEST_UID $TEST_UID $TEST_UID $TEST_UID/$TEST_GID $TEST_GID $TEST_GID $TEST_GID"
		check_eq "it holds no capability" "$(awk '/^CapEff:/ {print $2}' "/proc/$DAEMON_PID/status")" 0000000000000000
		reply=$(send_mail "$port" alice@example.org)
		check "a message is accepted: $reply" test "${reply%% *}" = 250
		id=${reply##* }
		file=$(grep -l "^Delivered-To: alice@example.org" "$run"/Maildir/alice/new/* 2>/dev/null | head -n 1)
		check "it is stored in alice's Maildir" test -n "$file"
		if [ -n "$file" ]; then
			check "the file name carries the ID $id" eval 'case $file in *"$id"*) true ;; *) false ;; esac'
			check_eq "the file belongs to $TEST_USER" "$(stat -c %u "$file")" "$TEST_UID"
		fi
		kill -TERM "$DAEMON_PID"
		check "SIGTERM stops it" wait_gone "$DAEMON_PID" 15
		DAEMON_PID=
	else
		fail "the daemon is not running after start"
		cat "$run/log/pollsmtpd.log" 2>/dev/null
	fi
else
	skip "running the installed daemon as root: not root"
fi

# --- 4b. as root, make install without DESTDIR gives the spool and log
# directories to the daemon's user (here the test user), as the packages
# do, so that the logger, no longer root, makes the new log file after a
# rotation.
if [ "$(id -u)" -eq 0 ]; then
	test_user
	P=$WORK/prefix
	prefix_vars="prefix=$P exec_prefix=$P bindir=$P/bin sbindir=$P/sbin sysconfdir=$P/etc
	    localstatedir=$P/var runstatedir=$P/run datarootdir=$P/share mandir=$P/share/man
	    systemdsystemunitdir=$P/lib/systemd/system initscriptdir=$P/etc/init.d
	    pollsmtpd_user=$TEST_USER pollsmtpd_group=$TEST_GROUP"
	# shellcheck disable=SC2086
	check "make install (no DESTDIR) into $P" eval 'make -s -C "$BUILDDIR" install $prefix_vars > "$WORK/make.log" 2>&1 || { cat "$WORK/make.log"; false; }'
	for dir in "$P/var/spool/pollsmtpd" "$P/var/log/pollsmtpd"; do
		check_eq "$dir: owner, group, mode" "$(stat -c '%U %G %a' "$dir" 2>&1)" "$TEST_USER $TEST_GROUP 750"
	done
	port=$(free_port)
	sed -e "s|^\([[:space:]]*listen[[:space:]]*=\).*|\1 [ \"127.0.0.1:$port\" ];|" \
	    -e "s|^\([[:space:]]*path[[:space:]]*=\)[^;]*;|\1 \"$P/var/spool/pollsmtpd\";|" \
	    -e "s|^\([[:space:]]*file[[:space:]]*=\)[^;]*;|\1 \"$P/var/log/pollsmtpd/pollsmtpd.log\";|" \
	    -e "s|^\([[:space:]]*pid_file[[:space:]]*=\)[^;]*;|\1 \"$WORK/prefix.pid\";|" \
	    -e "s|^\([[:space:]]*user[[:space:]]*=\)[^;]*;|\1 \"$TEST_USER\";|" \
	    -e "s|^\([[:space:]]*group[[:space:]]*=\)[^;]*;|\1 \"$TEST_GROUP\";|" \
	    -e "s|^\([[:space:]]*fsync[[:space:]]*=\)[^;]*;|\1 false;|" \
	    "$P/etc/pollsmtpd/pollsmtpd.conf" > "$WORK/prefix.conf"
	chmod 0755 "$WORK" "$P" "$P/var" "$P/var/spool" "$P/var/log"
	check "the daemon installed there starts (as root, detached)" "$P/sbin/pollsmtpd" -c "$WORK/prefix.conf"
	DAEMON_PID=$(cat "$WORK/prefix.pid" 2>/dev/null)
	log=$P/var/log/pollsmtpd/pollsmtpd.log
	if [ -n "$DAEMON_PID" ]; then
		mv "$log" "$log.1"
		kill -HUP "$DAEMON_PID"
		check "SIGHUP: the logger says it reopens (in the old file)" \
			eval 'for i in $(seq 50); do grep -q "reopening the log file" "$log.1" && break; sleep 0.1; done
			      grep -q "reopening the log file" "$log.1"'
		reply=$(send_mail "$port" alice@example.org)
		check "after the rotation a message is accepted: $reply" test "${reply%% *}" = 250
		check "... and logged in the new log file, made by $TEST_USER" \
			eval 'for i in $(seq 50); do grep -q "${reply##* }" "$log" 2>/dev/null && break; sleep 0.1; done
			      grep -q "${reply##* }" "$log" 2>/dev/null'
		kill -TERM "$DAEMON_PID"
		check "SIGTERM stops it" wait_gone "$DAEMON_PID" 15
		DAEMON_PID=
	else
		fail "the daemon installed in $P did not write its pid file"
	fi
	rm -rf "$P/var/spool/pollsmtpd"/* "$P/var/spool/pollsmtpd"/.OTHER_SERVERS "$P/var/log/pollsmtpd"/*
	# shellcheck disable=SC2086
	check "make uninstall (no DESTDIR) from $P" eval 'make -s -C "$BUILDDIR" uninstall $prefix_vars > "$WORK/make.log" 2>&1 || { cat "$WORK/make.log"; false; }'
	rm -rf "$P"
else
	skip "make install without DESTDIR, as root: not root"
fi

# --- 5. a second install keeps an edited configuration; uninstall too
echo '# edited by the administrator' >> "$D$conf"
check "make install again" do_make install
check "the edited configuration was kept" grep -q '^# edited by the administrator' "$D$conf"
check "make uninstall" do_make uninstall
check_eq "uninstall left only the edited configuration" "$(installed_files)" "$conf"

# --- 6. install, uninstall: nothing left
rm -f "$D$conf"
check "make install (fresh)" do_make install
check "make uninstall (fresh)" do_make uninstall
left=$(installed_files)
check_eq "make uninstall leaves no file" "$left" ""
for dir in "$spooldir" "$logdir" "$sysconfdir/pollsmtpd"; do
	check "make uninstall removed the empty $dir" test ! -e "$D$dir"
done

finish
