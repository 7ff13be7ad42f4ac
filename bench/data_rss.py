#!/usr/bin/env python3
"""data_rss.py - memory of a server while many clients are in DATA.

usage:
  data_rss.py PORT PID N MIB     N clients (each greeted, MAIL, RCPT
                                 alice@example.org, DATA) send MIB MiB of
                                 message text each and stop before the
                                 final dot; prints
                                 "N MIB BEFORE_BYTES DURING_BYTES PER_CLIENT"
                                 where the figures are the summed VmRSS of
                                 process PID and all its descendants (a
                                 Postfix master with its smtpd children, or
                                 pollsmtpd with its logger) before the
                                 clients connected and once every byte has
                                 been sent and taken; then every client
                                 sends its final dot and QUIT (the replies
                                 are read, not judged).

Only 127.0.0.1 is ever contacted. Every socket operation has a timeout and
the whole run is bounded (10 minutes), so nothing here can hang the
benchmark. The server must take the bytes: "taken" means each client's
socket send queue has drained (SIOCOUTQ): the server has received it.
"""

import fcntl
import os
import selectors
import socket
import struct
import sys
import time

TIMEOUT = 30.0
BOUND = 600.0
SIOCOUTQ = 0x5411


def tree_rss(pid):
    """VmRSS of pid and its descendants, in bytes."""
    children = {}
    for d in os.listdir("/proc"):
        if not d.isdigit():
            continue
        try:
            with open("/proc/%s/stat" % d) as f:
                ppid = int(f.read().rsplit(")", 1)[1].split()[1])
        except (OSError, IndexError, ValueError):
            continue
        children.setdefault(ppid, []).append(int(d))
    total, todo = 0, [pid]
    while todo:
        p = todo.pop()
        todo.extend(children.get(p, []))
        try:
            with open("/proc/%d/status" % p) as f:
                for line in f:
                    if line.startswith("VmRSS:"):
                        total += int(line.split()[1]) * 1024
        except OSError:
            pass
    return total


def reply(sock, buf):
    """One whole reply: (code, rest of buffer)."""
    while True:
        while b"\r\n" in buf:
            line, buf = buf.split(b"\r\n", 1)
            if len(line) < 4 or line[3:4] != b"-":
                return int(line[:3]), buf
        chunk = sock.recv(4096)
        if not chunk:
            raise OSError("connection closed")
        buf += chunk


def outq(sock):
    return struct.unpack("i", fcntl.ioctl(sock.fileno(), SIOCOUTQ,
                                          b"\0" * 4))[0]


def main():
    if len(sys.argv) != 5:
        print(__doc__.split("\n\n")[1], file=sys.stderr)
        return 64
    port, pid, n, mib = (int(a) for a in sys.argv[1:])
    deadline = time.monotonic() + BOUND
    before = tree_rss(pid)
    socks = []
    for _ in range(n):
        s = socket.create_connection(("127.0.0.1", port), timeout=TIMEOUT)
        buf = b""
        code, buf = reply(s, buf)
        s.sendall(b"EHLO bench.example\r\nMAIL FROM:<bench@client.example>"
                  b"\r\nRCPT TO:<alice@example.org>\r\nDATA\r\n")
        for want in (250, 250, 250, 354):
            code, buf = reply(s, buf)
            if code != want:
                raise SystemExit("client: %d where %d was due" % (code, want))
        socks.append(s)
    line = b"x" * 78 + b"\r\n"
    chunk = line * (65536 // len(line))
    total = mib * 1024 * 1024
    sent = {s: 0 for s in socks}
    sel = selectors.DefaultSelector()
    for s in socks:
        s.setblocking(False)
        sel.register(s, selectors.EVENT_WRITE)
    while sent and time.monotonic() < deadline:
        for key, _ in sel.select(timeout=1):
            s = key.fileobj
            off = sent[s] % len(chunk)
            want = min(len(chunk) - off, total - sent[s])
            try:
                sent[s] += s.send(chunk[off:off + want])
            except BlockingIOError:
                continue
            if sent[s] >= total:
                sel.unregister(s)
                del sent[s]
    sel.close()
    if sent:
        raise SystemExit("could not send the text within %d s" % BOUND)
    while any(outq(s) for s in socks) and time.monotonic() < deadline:
        time.sleep(0.05)
    during = tree_rss(pid)
    print("%d %d %d %d %d" % (n, mib, before, during,
                              (during - before) // n))
    sys.stdout.flush()
    for s in socks:
        s.setblocking(True)
        s.settimeout(TIMEOUT)
        s.sendall(b"\r\n.\r\nQUIT\r\n")
    for s in socks:
        try:
            buf = b""
            reply(s, buf)
        except OSError:
            pass
        s.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
