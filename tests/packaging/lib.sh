# tests/packaging/lib.sh - what the packaging tests share (sourced by bash).
#
# Each test runs against a configured and built tree, BUILDDIR (its first
# argument, default: the current directory), counts its checks and ends
# with "NAME: N passed, N failed"; the exit status is 0 only when none
# failed. A missing prerequisite is an error (exit 2), never a pass.

set -u

PASS=0
FAIL=0
TEST_NAME=${TEST_NAME:-$(basename "$0" .sh)}

pass() { PASS=$((PASS + 1)); echo "PASS: $*"; }
fail() { FAIL=$((FAIL + 1)); echo "FAIL: $*"; }
skip() { echo "SKIP: $*"; }
die() { echo "$TEST_NAME: ERROR: $*" >&2; exit 2; }

# check DESCRIPTION COMMAND... - one check: COMMAND must succeed
check() {
	local what=$1
	shift
	if "$@"; then pass "$what"; else fail "$what"; fi
}

# check_status DESCRIPTION WANT COMMAND... - COMMAND must exit with WANT
check_status() {
	local what=$1 want=$2 rc
	shift 2
	"$@"
	rc=$?
	if [ "$rc" -eq "$want" ]; then pass "$what"; else fail "$what (exit $rc, want $want)"; fi
}

# check_eq DESCRIPTION GOT WANT
check_eq() {
	if [ "$2" = "$3" ]; then pass "$1"; else fail "$1: got '$2', want '$3'"; fi
}

# show_build_failure LOG WHAT - a package build failed: the logs of its
# failing tests (make check with VERBOSE=1 prints them), then its end.
show_build_failure() {
	awk '/^(FAIL|ERROR): /{p=1} /^(PASS|SKIP|XFAIL): /{p=0} p' "$1" \
		| head -n 400
	tail -n 60 "$1"
	fail "$2 (the failing tests' logs and the end of its log above)"
}

finish() {
	echo "$TEST_NAME: $PASS passed, $FAIL failed"
	[ "$FAIL" -eq 0 ]
}

need() {
	local tool
	for tool in "$@"; do
		command -v "$tool" >/dev/null 2>&1 || die "$tool is missing: apt-get install debhelper lintian rpm cpio logrotate"
	done
}

need_root() {
	[ "$(id -u)" -eq 0 ] || die "must run as root"
}

# init_builddir [DIR] - BUILDDIR, absolute, configured and built
init_builddir() {
	BUILDDIR=$(cd "${1:-.}" && pwd) || die "no build directory ${1:-.}"
	[ -f "$BUILDDIR/Makefile" ] || die "$BUILDDIR is not configured (run ./configure)"
	make -s -C "$BUILDDIR" all >/dev/null || die "make all failed in $BUILDDIR"
}

# make_var NAME - the value of a variable of the build tree's Makefile,
# fully expanded, as make install sees it
make_var() {
	printf 'packaging-test-print-var:\n\t@echo $(%s)\n' "$1" |
		make -s --no-print-directory -C "$BUILDDIR" -f Makefile -f - \
			packaging-test-print-var
}

# free_port - a TCP port on 127.0.0.1 that nobody listens on now
free_port() {
	python3 -c 'import socket
s = socket.socket()
s.bind(("127.0.0.1", 0))
print(s.getsockname()[1])'
}

# wait_port PORT [SECONDS] - true once something accepts on 127.0.0.1:PORT
wait_port() {
	python3 - "$1" "${2:-10}" <<'PY'
import socket, sys, time
port, limit = int(sys.argv[1]), float(sys.argv[2])
end = time.time() + limit
while time.time() < end:
    try:
        socket.create_connection(("127.0.0.1", port), timeout=1).close()
        sys.exit(0)
    except OSError:
        time.sleep(0.1)
sys.exit(1)
PY
}

# send_mail PORT RCPT - one message over SMTP; prints the final reply
# ("250 2.0.0 Ok: queued as ID"); false when it is not a 250
send_mail() {
	python3 - "$1" "$2" <<'PY'
import smtplib, sys
port, rcpt = int(sys.argv[1]), sys.argv[2]
msg = b"Subject: packaging test\r\n\r\nHello from the packaging test.\r\n"
try:
    with smtplib.SMTP("127.0.0.1", port, local_hostname="client.example", timeout=20) as s:
        s.ehlo()
        s.mail("tester@example.net")
        code, text = s.rcpt(rcpt)
        if code != 250:
            print(code, text.decode(errors="replace"))
            sys.exit(1)
        code, text = s.data(msg)
        print(code, text.decode(errors="replace"))
        sys.exit(0 if code == 250 else 1)
except (OSError, smtplib.SMTPException) as e:
    print("SMTP error:", e)
    sys.exit(1)
PY
}

# wait_gone PID [SECONDS] - true once PID has exited
wait_gone() {
	local i=0 limit=$(( ${2:-10} * 10 ))
	while kill -0 "$1" 2>/dev/null; do
		# A zombie child of ours counts as gone.
		case $(awk '{print $3}' "/proc/$1/stat" 2>/dev/null) in Z) return 0 ;; esac
		i=$((i + 1))
		[ "$i" -ge "$limit" ] && return 1
		sleep 0.1
	done
	return 0
}

# proc_ids PID - "UIDS/GIDS" of a process: the real, effective, saved
# and file-system ids, e.g. "65534 65534 65534 65534/65534 65534 65534 65534"
proc_ids() {
	awk '/^Uid:/ { u = $2 " " $3 " " $4 " " $5 } /^Gid:/ { g = $2 " " $3 " " $4 " " $5 }
	     END { print u "/" g }' "/proc/$1/status" 2>/dev/null
}

# test_user - the unprivileged user (and group) a test daemon drops to
test_user() {
	if [ "$(id -u)" -eq 0 ]; then
		TEST_USER=nobody
		TEST_GROUP=$(id -gn nobody) || die "no user nobody"
	else
		TEST_USER=$(id -un)
		TEST_GROUP=$(id -gn)
	fi
	TEST_UID=$(id -u "$TEST_USER")
	TEST_GID=$(getent group "$TEST_GROUP" | cut -d: -f3)
}

# test_config IN OUT DIR PORT - OUT is the installed configuration IN
# turned into a test one: listening on 127.0.0.1:PORT, everything under
# DIR, dropping to TEST_USER/TEST_GROUP. Only values change, so the
# installed file's syntax is what is tested.
test_config() {
	sed -e "s|^\([[:space:]]*listen[[:space:]]*=\).*|\1 [ \"127.0.0.1:$4\" ];|" \
	    -e "s|^\([[:space:]]*path[[:space:]]*=\)[^;]*;|\1 \"$3/Maildir\";|" \
	    -e "s|^\([[:space:]]*file[[:space:]]*=\)[^;]*;|\1 \"$3/log/pollsmtpd.log\";|" \
	    -e "s|^\([[:space:]]*pid_file[[:space:]]*=\)[^;]*;|\1 \"$3/run/pollsmtpd.pid\";|" \
	    -e "s|^\([[:space:]]*user[[:space:]]*=\)[^;]*;|\1 \"$TEST_USER\";|" \
	    -e "s|^\([[:space:]]*group[[:space:]]*=\)[^;]*;|\1 \"$TEST_GROUP\";|" \
	    -e "s|^\([[:space:]]*fsync[[:space:]]*=\)[^;]*;|\1 false;|" \
	    "$1" > "$2"
	mkdir -p "$3/log" "$3/run"
	# As in the packages: the log directory is the daemon user's, so that
	# the logger, no longer root, can make a new file after a rotation.
	if [ "$(id -u)" -eq 0 ]; then
		chown "$TEST_USER:$TEST_GROUP" "$3/log"
	fi
	# The daemon, once it runs as TEST_USER, must reach its Maildir.
	chmod 0755 "$3"
}

# check_config_test WHAT DAEMON CONF - pollsmtpd -t on a configuration
# that is unpacked (a DESTDIR, a package's files) rather than installed:
# its user, its directories and the parent of its spool may not exist on
# this host yet, and -t (which checks what start-up checks) says so. The
# configuration passes when -t says nothing else, and no more than its
# one success line when it has nothing to say.
check_config_test() {
	local what=$1 daemon=$2 conf=$3 out rc
	out=$(mktemp)
	"$daemon" -t -c "$conf" > "$out" 2>&1
	rc=$?
	if grep -v -e ': server\.user: "[^"]*": no such user' \
	    -e ': server\.group: "[^"]*": no such group' \
	    -e ': log\.file: the directory .*: No such file or directory$' \
	    -e ': server\.pid_file: the directory .*: No such file or directory$' \
	    -e ': application\.maildir\.path: .* cannot be made: its parent .* does not exist' \
	    -e ': configuration file .* test is successful$' "$out" | grep -q .; then
		cat "$out"
		fail "$what: exit $rc (output above)"
	elif [ "$rc" -eq 0 ] && ! grep -q 'test is successful$' "$out"; then
		cat "$out"
		fail "$what: exit 0 without the success line"
	else
		pass "$what"
	fi
	rm -f "$out"
}
