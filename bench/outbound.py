#!/usr/bin/env python3
"""outbound.py - the queue watcher of bench/run's outbound row.

usage:
  outbound.py count KIND DIR         letters in the queue now (one number)
  outbound.py drain KIND DIR COUNTER N TIMEOUT
                                     wait until smtp-sink's counter file
                                     COUNTER says N messages arrived and
                                     the queue is empty, at most TIMEOUT
                                     seconds; print "END_NS ARRIVED LEFT"
                                     (END_NS: CLOCK_REALTIME nanoseconds
                                     when the queue was first seen empty)

KIND says what DIR is:
  pollsmtpd  root/.OTHER_SERVERS/<domain>: the letters in it and the
             claims in its .claim/ (a letter being sent is a claim)
  postfix    Postfix's queue_directory: every file under incoming/,
             active/, deferred/, hold/ and maildrop/

smtp-sink -c writes "sess=S quit=Q mesg=M" records separated by CR; the
last one counts. The queue is looked at every POLL_S seconds only once
the sink has counted N (or TIMEOUT is near), so that the watcher itself
takes little of the machine while the servers work.
"""

import os
import re
import sys
import time

POLL_S = 0.005
SINK_POLL_S = 0.02
MESG = re.compile(rb"mesg=(\d+)")
POSTFIX_QUEUES = ("incoming", "active", "deferred", "hold", "maildrop")


def count_files(path):
    """Regular files below path (every depth); 0 when it is missing."""
    n = 0
    try:
        with os.scandir(path) as it:
            for e in it:
                if e.is_dir(follow_symlinks=False):
                    n += count_files(e.path)
                elif e.is_file(follow_symlinks=False):
                    n += 1
    except FileNotFoundError:
        pass
    return n


def count_letters(path):
    """pollsmtpd: the letters of one domain, queued or claimed."""
    n = 0
    try:
        with os.scandir(path) as it:
            for e in it:
                if not e.name.startswith(".") \
                        and e.is_file(follow_symlinks=False):
                    n += 1
    except FileNotFoundError:
        pass
    try:
        with os.scandir(os.path.join(path, ".claim")) as it:
            n += sum(1 for e in it if e.is_file(follow_symlinks=False))
    except FileNotFoundError:
        pass
    return n


def queued(kind, path):
    if kind == "pollsmtpd":
        return count_letters(path)
    return sum(count_files(os.path.join(path, q)) for q in POSTFIX_QUEUES)


def sink_count(counter):
    try:
        with open(counter, "rb") as f:
            f.seek(0, os.SEEK_END)
            size = f.tell()
            f.seek(max(0, size - 256))
            tail = f.read()
    except OSError:
        return 0
    found = MESG.findall(tail)
    return int(found[-1]) if found else 0


def drain(kind, path, counter, n, timeout):
    deadline = time.monotonic() + timeout
    while sink_count(counter) < n and time.monotonic() < deadline - 1:
        time.sleep(SINK_POLL_S)
    while True:
        left = queued(kind, path)
        end = time.time_ns()
        if left == 0 or time.monotonic() >= deadline:
            break
        time.sleep(POLL_S)
    # The sink counts a message at its dot: give its counter a moment.
    arrived = sink_count(counter)
    settle = time.monotonic() + 2
    while arrived < n and time.monotonic() < settle:
        time.sleep(SINK_POLL_S)
        arrived = sink_count(counter)
    print(end, arrived, left)
    return 0 if left == 0 and arrived >= n else 1


def main(argv):
    if len(argv) == 4 and argv[1] == "count" \
            and argv[2] in ("pollsmtpd", "postfix"):
        print(queued(argv[2], argv[3]))
        return 0
    if len(argv) == 7 and argv[1] == "drain" \
            and argv[2] in ("pollsmtpd", "postfix"):
        return drain(argv[2], argv[3], argv[4], int(argv[5]),
                     float(argv[6]))
    sys.stderr.write(__doc__)
    return 64


if __name__ == "__main__":
    sys.exit(main(sys.argv))
