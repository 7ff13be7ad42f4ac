#!/bin/sh
# inspect-bench.sh - how fast maildir-inspect reads a big queue.
#
# usage: bench/inspect-bench.sh [BINARY [LETTERS [DOMAINS]]]
#
# Builds a queue of LETTERS (default 100000) queued letters spread over
# DOMAINS (default 50) remote domains in a temporary directory (with ages
# from seconds to days, 1% of them in error/, and two local users), then
# times `maildir-inspect summary`, `maildir-inspect --json summary` and,
# for comparison, `list` (which opens the head of every letter). Each is
# run three times after one warm-up run; the median wall-clock time is
# printed. The page cache is warm: this measures the tool, not the disk.
#
# This is a benchmark, not a test: it prints numbers and fails only when
# a run fails. The target (issue 3) is summary over 100,000 letters in
# about a second on 2 cores.
set -eu

here=$(cd "$(dirname "$0")" && pwd)
bin=${1:-$here/../src/maildir-inspect/maildir-inspect}
letters=${2:-100000}
domains=${3:-50}
python=${PYTHON3:-python3}

if [ ! -x "$bin" ]; then
	echo "inspect-bench: $bin is not built (make src/maildir-inspect/maildir-inspect)" >&2
	exit 1
fi
if ! command -v "$python" >/dev/null 2>&1; then
	echo "inspect-bench: python3 is needed to build the fixture" >&2
	exit 1
fi

dir=$(mktemp -d "${TMPDIR:-/tmp}/inspect-bench.XXXXXX")
trap 'rm -rf "$dir"' EXIT INT TERM
root=$dir/root

echo "inspect-bench: building $letters letters in $domains domains under $root"
"$python" - "$root" "$letters" "$domains" <<'PY'
import os, sys, time
root, letters, domains = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
now = int(time.time())
q = os.path.join(root, ".OTHER_SERVERS")
os.makedirs(os.path.join(q, ".tmp"))
for user in ("alice", "bob"):
    for sub in ("tmp", "new", "cur"):
        os.makedirs(os.path.join(root, user, sub))
names = ["domain%02d.example" % d for d in range(domains)]
for d in names:
    os.makedirs(os.path.join(q, d, "error"))
body = b"Subject: benchmark\nFrom: <sender@client.example>\n\n" + b"x" * 1500 + b"\n"
for i in range(letters):
    d = names[i % domains]
    msgid = "%017X" % (0x6925A1F30B2C40000 + i)
    age = (i * 7919) % (3 * 86400)
    name = "%d.%s.mx.bench.example" % (now - age, msgid)
    sub = "error" if i % 97 == 0 else ""
    path = os.path.join(q, d, sub, name)
    with open(path, "wb") as f:
        f.write(b"X-Envelope-From: <sender@client.example> SIZE=1600\n"
                b"X-Envelope-To: <user%d@%s>\n"
                b"Received: from client.example ([127.0.0.1]) by "
                b"mx.bench.example (pollsmtpd) with ESMTP id %s; "
                b"Thu, 26 Nov 2026 07:00:00 +0000\n"
                % (i, d.encode(), msgid.encode()))
        f.write(body)
    os.utime(path, (now - age, now - age))
PY

# run_median LABEL ARGS... - the median of three timed runs, in seconds
run_median() {
	label=$1
	shift
	"$bin" -d "$root" "$@" >/dev/null
	times=""
	for _ in 1 2 3; do
		start=$(date +%s%N)
		"$bin" -d "$root" "$@" >/dev/null
		end=$(date +%s%N)
		times="$times $(( (end - start) / 1000000 ))"
	done
	median=$(printf '%s\n' $times | sort -n | sed -n 2p)
	printf '%-28s median %5d.%03d s   (runs, ms:%s)\n' "$label" \
	    $((median / 1000)) $((median % 1000)) "$times"
}

echo "inspect-bench: $(nproc 2>/dev/null || echo '?') CPUs, $("$bin" -V)"
"$bin" -d "$root" summary | tail -n 8
run_median "summary" summary
run_median "--json summary" --json summary
run_median "list" list
