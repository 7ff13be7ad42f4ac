#!/bin/bash
# tests/packaging/sysv-test.sh - the SysV init script drives the daemon.
#
#   tests/packaging/sysv-test.sh [BUILDDIR]
#
# The init script and daemon are installed with make install DESTDIR=...;
# a copy of the installed script points at the DESTDIR daemon and a test
# configuration (127.0.0.1, a free port, everything in a temporary
# directory) - its only change. Both ways the script can work are run:
# with start-stop-daemon (where there is one) and in plain shell.
# start, status, reload, restart, force-reload, stop, and the LSB exit
# statuses for "not running", "stale pid file" and a failed start.

TEST_NAME=sysv-test
. "$(dirname "$0")/lib.sh"

need make python3 sed
init_builddir "${1:-}"

WORK=$(mktemp -d /tmp/pollsmtpd-sysv-test.XXXXXX) || die "mktemp"
chmod 0755 "$WORK"
PIDS_TO_KILL=
cleanup() {
	local p
	for p in $PIDS_TO_KILL; do kill -TERM "$p" 2>/dev/null; done
	rm -rf "$WORK"
}
trap cleanup EXIT
D=$WORK/destdir

initdir=$(make_var initscriptdir)
sbindir=$(make_var sbindir)
sysconfdir=$(make_var sysconfdir)
logdir=$(make_var localstatedir)/log/pollsmtpd
pidfile=$(make_var runstatedir)/pollsmtpd.pid
[ -n "$initdir" ] || initdir=$sysconfdir/init.d
make -s -C "$BUILDDIR" install DESTDIR="$D" > "$WORK/make.log" 2>&1 || { cat "$WORK/make.log"; die "make install failed"; }
installed_script=$D$initdir/pollsmtpd
[ -f "$installed_script" ] || installed_script=$BUILDDIR/etc/init.d/pollsmtpd
daemon=$D$sbindir/pollsmtpd
test_user

# The script keeps the system's environment out: no systemctl redirect.
export _SYSTEMCTL_SKIP_REDIRECT=1

# script_status MODE ACTION - run the test copy of the script; its output
# goes to $WORK/out, its exit status is returned
run_script() {
	"$WORK/$1/pollsmtpd" "$2" > "$WORK/out" 2>&1
	local rc=$?
	sed "s/^/    [$1 $2] /" "$WORK/out"
	return "$rc"
}

pid_of() { cat "$WORK/$1/run/pollsmtpd.pid" 2>/dev/null; }

one_mode() {
	local mode=$1 dir=$WORK/$1 port pid pid2 reply
	mkdir -p "$dir"
	port=$(free_port)
	test_config "$D$sysconfdir/pollsmtpd/pollsmtpd.conf" "$dir/test.conf" "$dir" "$port"
	sed -e "s|^DAEMON=.*|DAEMON=$daemon|" \
	    -e "s|^CONFFILE=.*|CONFFILE=$dir/test.conf|" \
	    "$installed_script" > "$dir/pollsmtpd"
	if [ "$mode" = plain ]; then
		sed -i 's|^SSD=.*|SSD=|' "$dir/pollsmtpd"
	fi
	chmod 0755 "$dir/pollsmtpd"
	echo "--- $mode: port $port, script $dir/pollsmtpd"

	check_status "$mode: status before start is 3 (not running)" 3 run_script "$mode" status
	check_status "$mode: start" 0 run_script "$mode" start
	pid=$(pid_of "$mode")
	PIDS_TO_KILL="$PIDS_TO_KILL $pid"
	check "$mode: the pid file names a live process" kill -0 "${pid:-0}"
	check "$mode: it serves on 127.0.0.1:$port" wait_port "$port" 5
	check_status "$mode: status is 0 (running)" 0 run_script "$mode" status
	check "$mode: status names the pid $pid" grep -q "$pid" "$WORK/out"
	if [ "$(id -u)" -eq 0 ]; then
		check_eq "$mode: it runs as $TEST_USER, not root" "$(proc_ids "$pid" | cut -d/ -f1)" \
			"$TEST_UID $TEST_UID $TEST_UID $TEST_UID"
	fi
	reply=$(send_mail "$port" bob@example.org)
	check "$mode: a message is accepted: $reply" test "${reply%% *}" = 250
	check_status "$mode: start while running is 0" 0 run_script "$mode" start
	check_eq "$mode: ... and starts no second daemon" "$(pid_of "$mode")" "$pid"

	# reload is what logrotate does after renaming the log: the daemon
	# must go on in a new file under the configured name.
	mv "$dir/log/pollsmtpd.log" "$dir/log/pollsmtpd.log.1"
	check_status "$mode: reload" 0 run_script "$mode" reload
	sleep 0.5
	check "$mode: the daemon lives on after reload" kill -0 "$pid"
	reply=$(send_mail "$port" bob@example.org)
	check "$mode: and serves: $reply" test "${reply%% *}" = 250
	check "$mode: reload reopened the log: the new file has the message ${reply##* }" \
		eval 'for i in 1 2 3 4 5 6 7 8 9 10; do grep -q "${reply##* }" "$dir/log/pollsmtpd.log" 2>/dev/null && break; sleep 0.2; done
		      grep -q "${reply##* }" "$dir/log/pollsmtpd.log" 2>/dev/null'
	check "$mode: ... and the rotated file has none of it" eval '! grep -q "${reply##* }" "$dir/log/pollsmtpd.log.1"'

	# The installed logrotate file, with the test's log and pid file.
	if command -v logrotate >/dev/null 2>&1; then
		sed -e "s|^$logdir/|$dir/log/|" -e "s|$pidfile|$dir/run/pollsmtpd.pid|g" \
			"$D$sysconfdir/logrotate.d/pollsmtpd" > "$dir/logrotate.conf"
		rm -f "$dir/log/pollsmtpd.log.1"
		check "$mode: logrotate -f with the installed logrotate file" \
			logrotate -f -s "$dir/logrotate.state" "$dir/logrotate.conf"
		check "$mode: logrotate renamed the log" test -s "$dir/log/pollsmtpd.log.1"
		reply=$(send_mail "$port" bob@example.org)
		check "$mode: after logrotate a message goes to the new log file" \
			eval 'for i in 1 2 3 4 5 6 7 8 9 10; do grep -q "${reply##* }" "$dir/log/pollsmtpd.log" 2>/dev/null && break; sleep 0.2; done
			      grep -q "${reply##* }" "$dir/log/pollsmtpd.log" 2>/dev/null'
	else
		skip "$mode: logrotate is not installed"
	fi

	check_status "$mode: restart" 0 run_script "$mode" restart
	pid2=$(pid_of "$mode")
	PIDS_TO_KILL="$PIDS_TO_KILL $pid2"
	check "$mode: restart stopped the old daemon" wait_gone "$pid" 1
	check "$mode: restart started a new one" kill -0 "${pid2:-0}"
	check "$mode: it serves again" wait_port "$port" 5

	check_status "$mode: force-reload (a restart: the configuration is read at start)" 0 run_script "$mode" force-reload
	pid=$(pid_of "$mode")
	PIDS_TO_KILL="$PIDS_TO_KILL $pid"
	check "$mode: force-reload replaced the daemon" test -n "$pid" -a "$pid" != "$pid2"

	check_status "$mode: stop" 0 run_script "$mode" stop
	check "$mode: the daemon is gone" wait_gone "$pid" 1
	check "$mode: the pid file is gone" test ! -e "$dir/run/pollsmtpd.pid"
	check "$mode: nothing listens on $port" eval "! wait_port $port 0.3"
	check_status "$mode: status after stop is 3" 3 run_script "$mode" status
	check_status "$mode: stop when stopped is 0" 0 run_script "$mode" stop
	check_status "$mode: reload when stopped is 7" 7 run_script "$mode" reload

	# A pid file whose process is gone: status 1.
	sleep 0 & wait $!
	echo "$!" > "$dir/run/pollsmtpd.pid"
	check_status "$mode: status with a stale pid file is 1" 1 run_script "$mode" status
	check_status "$mode: start over a stale pid file" 0 run_script "$mode" start
	pid=$(pid_of "$mode")
	PIDS_TO_KILL="$PIDS_TO_KILL $pid"
	check "$mode: ... runs" kill -0 "${pid:-0}"
	check_status "$mode: stop" 0 run_script "$mode" stop
	check "$mode: the daemon is gone" wait_gone "${pid:-0}" 1

	# A configuration error: start fails and says so; nothing runs.
	cp "$dir/test.conf" "$dir/test.conf.good"
	echo 'no_such_key = 1;' >> "$dir/test.conf"
	check_status "$mode: start with a broken configuration fails (1)" 1 run_script "$mode" start
	check "$mode: ... and the reason is shown" grep -q "test.conf:[0-9]" "$WORK/out"
	check_status "$mode: status is 3" 3 run_script "$mode" status
	mv "$dir/test.conf.good" "$dir/test.conf"
}

if command -v start-stop-daemon >/dev/null 2>&1; then
	one_mode ssd
else
	skip "start-stop-daemon: there is none here; plain shell only"
fi
one_mode plain

finish
