#!/bin/bash
# tests/packaging/systemd-test.sh - the systemd unit: hardening, and the
# daemon run the way the unit runs it.
#
#   tests/packaging/systemd-test.sh [BUILDDIR]
#
# 1. systemd-analyze security --offline=true on the built unit: the
#    overall exposure must be 2.0 or less; the settings the daemon
#    depends on (Type=notify, User=, the one ambient capability, the
#    writable spool and log) are there.
# 2. As root: the built daemon started as the unit starts it, without
#    systemd as PID 1: setpriv gives it the unit's user (here the test
#    user), no supplementary groups, no_new_privs, the unit's UMask= and
#    only the unit's AmbientCapabilities=; it listens on a port below
#    1024 on 127.0.0.1, tells the test (playing systemd, $NOTIFY_SOCKET)
#    READY=1 once it greets, stores a message, and after a rotation
#    (rename, SIGHUP: what logrotate does) its logger makes the new log
#    file itself in the log directory it owns.
# 3. With strace (when it can trace here): every system call the daemon
#    and its logger made meanwhile is one the unit's SystemCallFilter=
#    allows (@system-service less @privileged and @resources), so the
#    filter cannot break it.

TEST_NAME=systemd-test
. "$(dirname "$0")/lib.sh"

need make python3 systemd-analyze
init_builddir "${1:-}"

WORK=$(mktemp -d /tmp/pollsmtpd-systemd-test.XXXXXX) || die "mktemp"
chmod 0755 "$WORK"
DAEMON_PID=
NOTIFY_PID=
cleanup() {
	[ -n "$DAEMON_PID" ] && kill -TERM "$DAEMON_PID" 2>/dev/null && wait_gone "$DAEMON_PID" 10
	[ -n "$NOTIFY_PID" ] && kill "$NOTIFY_PID" 2>/dev/null
	rm -rf "$WORK"
}
trap cleanup EXIT

unit=$BUILDDIR/etc/pollsmtpd.service
spooldir=$(make_var localstatedir)/spool/pollsmtpd
logdir=$(make_var localstatedir)/log/pollsmtpd
[ -f "$unit" ] || die "no $unit: make all did not build it"

# unit_value KEY - the value of KEY= in the unit, the last one
unit_value() { sed -n "s/^$1=//p" "$unit" | tail -n 1; }

# --- 1. exposure and settings
systemd-analyze security --offline=true "$unit" > "$WORK/security.log" 2>&1
sed 's/^/    /' "$WORK/security.log" | grep -e '✗' -e '→' -e 'rror'
exposure=$(sed -n 's/.*Overall exposure level for [^:]*: \([0-9.]*\).*/\1/p' "$WORK/security.log")
check "systemd-analyze security --offline=true gives an exposure level ($exposure)" test -n "$exposure"
check "... of at most 2.0" awk -v e="${exposure:-99}" 'BEGIN { exit !(e <= 2.0) }'
check_eq "Type" "$(unit_value Type)" notify
check_eq "User" "$(unit_value User)" pollsmtpd
check_eq "Group" "$(unit_value Group)" pollsmtpd
check_eq "AmbientCapabilities" "$(unit_value AmbientCapabilities)" CAP_NET_BIND_SERVICE
check_eq "CapabilityBoundingSet" "$(unit_value CapabilityBoundingSet)" CAP_NET_BIND_SERVICE
check_eq "UMask" "$(unit_value UMask)" 0077
check_eq "ReadWritePaths: the spool and the log" "$(unit_value ReadWritePaths)" "$spooldir $logdir"
check_eq "RestrictAddressFamilies" "$(unit_value RestrictAddressFamilies)" "AF_INET AF_INET6 AF_UNIX"
check "the unit's comments say where the logs go" grep -q "^# Where the logs go: " "$unit"

# --- 2. the daemon as the unit runs it
if [ "$(id -u)" -ne 0 ]; then
	skip "running the daemon as the unit does: needs root (setpriv)"
	finish
	exit
fi
if ! command -v setpriv >/dev/null 2>&1; then
	skip "running the daemon as the unit does: no setpriv here"
	finish
	exit
fi
test_user
daemon=$BUILDDIR/src/pollsmtpd/pollsmtpd
run=$WORK/run
mkdir -p "$run/Maildir" "$run/log"
# As the packages and make install leave them: the user's, mode 0750.
chown "$TEST_USER:$TEST_GROUP" "$run/Maildir" "$run/log"
chmod 0750 "$run/Maildir" "$run/log"
# A free port below 1024: only CAP_NET_BIND_SERVICE lets the daemon bind it.
port=$(python3 -c 'import socket
for p in range(1023, 600, -1):
    s = socket.socket()
    try:
        s.bind(("127.0.0.1", p))
        print(p)
        break
    except OSError:
        pass
    finally:
        s.close()')
[ -n "$port" ] || die "no free port below 1024 on 127.0.0.1"
sed -e "s|^\([[:space:]]*listen[[:space:]]*=\).*|\1 [ \"127.0.0.1:$port\" ];|" \
    -e "s|^\([[:space:]]*path[[:space:]]*=\)[^;]*;|\1 \"$run/Maildir\";|" \
    -e "s|^\([[:space:]]*file[[:space:]]*=\)[^;]*;|\1 \"$run/log/pollsmtpd.log\";|" \
    -e "s|^\([[:space:]]*fsync[[:space:]]*=\)[^;]*;|\1 false;|" \
    -e "s|^\([[:space:]]*user[[:space:]]*=\)[^;]*;|\1 \"$TEST_USER\";|" \
    -e "s|^\([[:space:]]*group[[:space:]]*=\)[^;]*;|\1 \"$TEST_GROUP\";|" \
    -e "s|^\([[:space:]]*pid_file[[:space:]]*=\)[^;]*;|\1 \"$run/pollsmtpd.pid\";|" \
    "$BUILDDIR/etc/pollsmtpd.conf" > "$run/test.conf"
check "the test configuration passes -t" "$daemon" -t -c "$run/test.conf"

# The test plays systemd: it receives the notification datagram and
# notes the sender's pid, as systemd does for NotifyAccess=main.
notify=$WORK/notify.sock
python3 - "$notify" "$WORK/notified" "$TEST_UID" <<'PY' &
import os, select, socket, struct, sys, time
path, out, uid = sys.argv[1], sys.argv[2], int(sys.argv[3])
s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
s.setsockopt(socket.SOL_SOCKET, socket.SO_PASSCRED, 1)
s.bind(path)
os.chown(path, uid, -1)
deadline = time.time() + 30
while time.time() < deadline:
    if select.select([s], [], [], 0.1)[0]:
        data, anc, _f, _a = s.recvmsg(4096, socket.CMSG_SPACE(12))
        pid = [struct.unpack("3i", d[:12])[0] for l, t, d in anc
               if l == socket.SOL_SOCKET and t == socket.SCM_CREDENTIALS]
        with open(out + ".tmp", "w") as f:
            f.write("%s %s\n" % (pid[0] if pid else "?", data.decode("ascii", "replace")))
        os.rename(out + ".tmp", out)
        break
PY
NOTIFY_PID=$!
check "the notification socket is there" eval 'for i in $(seq 50); do [ -S "$notify" ] && break; sleep 0.1; done; [ -S "$notify" ]'

caps=$(unit_value AmbientCapabilities | tr 'A-Z' 'a-z' | sed 's/cap_//g; s/ /,+/g')
umask_value=$(unit_value UMask)
strace_cmd=
if command -v strace >/dev/null 2>&1 && strace -f -o /dev/null true 2>/dev/null; then
	strace_cmd="strace -f -qq -o $WORK/strace.log"
fi
# setpriv: the unit's User=, no supplementary groups, the ambient
# capability (which must be inheritable first), no_new_privs.
(umask "$umask_value" && exec $strace_cmd setpriv --reuid="$TEST_USER" --regid="$TEST_GROUP" --clear-groups \
	--inh-caps=-all,+"$caps" --ambient-caps=-all,+"$caps" --bounding-set=-all,+"$caps" \
	--no-new-privs env NOTIFY_SOCKET="$notify" "$daemon" -f -c "$run/test.conf") \
	> "$run/stderr.log" 2>&1 &
DAEMON_PID=$!
check "READY=1 came" eval 'for i in $(seq 100); do [ -f "$WORK/notified" ] && break; sleep 0.1; done; [ -f "$WORK/notified" ]'
notified=$(cat "$WORK/notified" 2>/dev/null)
daemon_pid=${notified%% *}
check_eq "the notification" "${notified#* }" "READY=1"
check "it greets on 127.0.0.1:$port as soon as it said so" wait_port "$port" 0.5
check_eq "it came from the daemon ($daemon_pid), running as $TEST_USER" \
	"$(proc_ids "$daemon_pid" | cut -d/ -f1)" "$TEST_UID $TEST_UID $TEST_UID $TEST_UID"
check_eq "its capabilities are the unit's only (CapEff)" \
	"$(awk '/^CapEff:/ {print $2}' "/proc/$daemon_pid/status" 2>/dev/null)" 0000000000000400
reply=$(send_mail "$port" alice@example.org)
check "a message is accepted: $reply" test "${reply%% *}" = 250
file=$(ls "$run"/Maildir/alice/new/* 2>/dev/null | head -n 1)
check "it is stored in alice's Maildir" test -n "$file"
check_eq "the file is $TEST_USER's, mode 0600 (UMask=$umask_value)" "$(stat -c '%u %a' "$file" 2>&1)" "$TEST_UID 600"

mv "$run/log/pollsmtpd.log" "$run/log/pollsmtpd.log.1"
kill -HUP "$daemon_pid"
check "SIGHUP: the logger says it reopens (in the old file)" \
	eval 'for i in $(seq 50); do grep -q "reopening the log file" "$run/log/pollsmtpd.log.1" && break; sleep 0.1; done
	      grep -q "reopening the log file" "$run/log/pollsmtpd.log.1"'
reply=$(send_mail "$port" bob@example.org)
id=${reply##* }
check "after a rotation a message is accepted: $reply" test "${reply%% *}" = 250
check "the logger made a new log file with it ($id)" \
	eval 'for i in $(seq 50); do grep -q "$id" "$run/log/pollsmtpd.log" 2>/dev/null && break; sleep 0.1; done
	      grep -q "$id" "$run/log/pollsmtpd.log" 2>/dev/null'
check_eq "... the user's" "$(stat -c %u "$run/log/pollsmtpd.log" 2>&1)" "$TEST_UID"

kill -TERM "$daemon_pid"
wait "$DAEMON_PID"
rc=$?
DAEMON_PID=
check_eq "SIGTERM stops it with status 0" "$rc" 0
[ "$rc" -eq 0 ] || cat "$run/stderr.log"

# --- 3. the system calls it made
if [ -z "$strace_cmd" ]; then
	skip "system calls against SystemCallFilter=: strace cannot trace here"
	finish
	exit
fi
# expand SET... - the system calls of the named sets, nested sets expanded
expand() {
	local item
	for item in "$@"; do
		systemd-analyze syscall-filter --no-pager "$item" 2>/dev/null |
			sed -n 's/^    \([-@a-z0-9_]*\)$/\1/p' |
			while read -r name; do
				case $name in
				@*) expand "$name" ;;
				*) echo "$name" ;;
				esac
			done
	done
}
grep '^SystemCallFilter=' "$unit" | sed 's/^SystemCallFilter=//' > "$WORK/filters"
: > "$WORK/allowed"; : > "$WORK/denied"
while read -r line; do
	case $line in
	~*) expand ${line#\~} >> "$WORK/denied" ;;
	*) expand $line >> "$WORK/allowed" ;;
	esac
done < "$WORK/filters"
LC_ALL=C sort -u "$WORK/allowed" > "$WORK/allowed.s"
LC_ALL=C sort -u "$WORK/denied" > "$WORK/denied.s"
LC_ALL=C comm -23 "$WORK/allowed.s" "$WORK/denied.s" > "$WORK/permitted"
check "the filter allows something ($(wc -l < "$WORK/permitted") calls)" test -s "$WORK/permitted"
check "... and denies setuid" eval '! grep -qx setuid "$WORK/permitted"'
# The calls of the daemon from its execve on (before, setpriv needs
# privileged ones; the unit's filter applies from the daemon's execve),
# and of every process it forked.
python3 - "$WORK/strace.log" "$daemon" > "$WORK/used" <<'PY'
import re, sys
log, daemon = sys.argv[1], sys.argv[2]
lines = open(log, errors="replace").read().splitlines()
call = re.compile(r"^(\d+) +([a-z0-9_]+)\(")
exec_pid, exec_at, children = None, None, {}
for i, line in enumerate(lines):
    m = call.match(line)
    if not m:
        continue
    pid, name = m.groups()
    # The execve of the daemon itself, not of setpriv or env, whose
    # arguments name it too.
    if name == "execve" and exec_pid is None \
            and ('execve("%s",' % daemon) in line and line.endswith("= 0"):
        exec_pid, exec_at = pid, i
    r = re.search(r"= (\d+)$", line)
    if name in ("clone", "clone3", "fork", "vfork") and r:
        children.setdefault(pid, []).append(r.group(1))
ours, todo = set(), [exec_pid] if exec_pid else []
while todo:
    p = todo.pop()
    if p not in ours:
        ours.add(p)
        todo.extend(children.get(p, []))
used = set()
for i, line in enumerate(lines):
    m = call.match(line)
    if m and m.group(1) in ours and (m.group(1) != exec_pid or i > exec_at):
        used.add(m.group(2))
print("\n".join(sorted(used)))
PY
check "strace saw the daemon's calls ($(wc -l < "$WORK/used"))" grep -qx accept4 "$WORK/used"
LC_ALL=C sort -u "$WORK/used" | LC_ALL=C comm -23 - "$WORK/permitted" > "$WORK/outside"
if [ -s "$WORK/outside" ]; then
	sed 's/^/    not allowed: /' "$WORK/outside"
	fail "the daemon made system calls the unit's SystemCallFilter= refuses (above)"
else
	pass "every system call of the daemon and its logger is allowed by SystemCallFilter="
fi

finish
