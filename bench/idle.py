#!/usr/bin/env python3
"""idle.py - helpers of bench/run that need sockets: wait, probe, idle.

usage:
  idle.py wait PORT                  wait (at most 10 s) until 127.0.0.1:PORT
                                     greets with 220; exit 1 if it never does
  idle.py probe PORT                 one whole SMTP transaction; prints the
                                     milliseconds it took
  idle.py idle PORT PID N [N...]     open N idle connections (each greeted),
                                     then print "N RSS_BYTES PROBE_MS" for
                                     each N, RSS being VmRSS of process PID
                                     and PROBE_MS the time a new client took
                                     for a whole transaction meanwhile
  idle.py idle-tls PORT PID N [N...] the same with connections that did
                                     EHLO, STARTTLS and EHLO again

Only 127.0.0.1 is ever contacted. Every socket operation has a timeout, so
nothing here can hang the benchmark.
"""

import os
import selectors
import socket
import ssl
import sys
import time

TIMEOUT = 10.0
MESSAGE = (b"From: <bench@client.example>\r\nTo: <alice@example.org>\r\n"
           b"Subject: probe\r\n\r\n" + b"x" * 1000 + b"\r\n")


def reply(sock, buf):
    """One whole reply (continuation lines included): (code, rest)."""
    while True:
        while b"\r\n" in buf:
            line, buf = buf.split(b"\r\n", 1)
            if len(line) < 4 or line[3:4] != b"-":
                return int(line[:3]), buf
        chunk = sock.recv(4096)
        if not chunk:
            raise OSError("connection closed")
        buf += chunk


def transaction(port):
    """Milliseconds for greeting, EHLO, MAIL, RCPT, DATA, text, QUIT."""
    start = time.monotonic()
    with socket.create_connection(("127.0.0.1", port), timeout=TIMEOUT) as s:
        buf = b""
        steps = [(None, 220), (b"EHLO probe.example\r\n", 250),
                 (b"MAIL FROM:<bench@client.example>\r\n", 250),
                 (b"RCPT TO:<alice@example.org>\r\n", 250),
                 (b"DATA\r\n", 354), (MESSAGE + b".\r\n", 250),
                 (b"QUIT\r\n", 221)]
        for send, want in steps:
            if send is not None:
                s.sendall(send)
            code, buf = reply(s, buf)
            if code != want:
                raise OSError("got %d, wanted %d" % (code, want))
    return (time.monotonic() - start) * 1000.0


def rss(pid):
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    raise OSError("no VmRSS for %d" % pid)


def wait(port):
    deadline = time.monotonic() + TIMEOUT
    while time.monotonic() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port),
                                          timeout=1) as s:
                if s.recv(512).startswith(b"220"):
                    return 0
        except OSError:
            pass
        time.sleep(0.05)
    return 1


def open_idle(port, socks, count):
    """Grow socks to count connections, each having read its greeting."""
    sel = selectors.DefaultSelector()
    waiting = 0
    while len(socks) < count:
        s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        s.settimeout(TIMEOUT)
        s.connect(("127.0.0.1", port))
        s.setblocking(False)
        socks.append(s)
        sel.register(s, selectors.EVENT_READ)
        waiting += 1
    deadline = time.monotonic() + 60
    while waiting > 0:
        if time.monotonic() > deadline:
            raise OSError("%d connections never greeted" % waiting)
        for key, _ in sel.select(timeout=1):
            data = key.fileobj.recv(512)
            if not data.startswith(b"220"):
                raise OSError("greeting %r" % data[:40])
            sel.unregister(key.fileobj)
            waiting -= 1
    sel.close()


def open_idle_tls(port, socks, count):
    """Grow socks to count connections in TLS, each after EHLO again."""
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    while len(socks) < count:
        s = socket.create_connection(("127.0.0.1", port), timeout=TIMEOUT)
        buf = b""
        for send, want in [(None, 220), (b"EHLO idle.example\r\n", 250),
                           (b"STARTTLS\r\n", 220)]:
            if send is not None:
                s.sendall(send)
            code, buf = reply(s, buf)
            if code != want:
                raise OSError("got %d, wanted %d" % (code, want))
        s = ctx.wrap_socket(s)
        s.sendall(b"EHLO idle.example\r\n")
        code, buf = reply(s, b"")
        if code != 250:
            raise OSError("EHLO in TLS: %d" % code)
        socks.append(s)


def idle(port, pid, counts, tls=False):
    transaction(port)		# the code paths of a transaction are paged in
    time.sleep(0.2)
    print("0 %d 0" % rss(pid))
    socks = []
    try:
        for n in counts:
            if tls:
                open_idle_tls(port, socks, n)
            else:
                open_idle(port, socks, n)
            time.sleep(0.5)	# the server has done what it does on connect
            size = rss(pid)
            ms = transaction(port)
            print("%d %d %.2f" % (n, size, ms))
            sys.stdout.flush()
    finally:
        for s in socks:
            s.close()
    return 0


def main(argv):
    if len(argv) >= 3 and argv[1] == "wait":
        return wait(int(argv[2]))
    if len(argv) >= 3 and argv[1] == "probe":
        print("%.2f" % transaction(int(argv[2])))
        return 0
    if len(argv) >= 5 and argv[1] in ("idle", "idle-tls"):
        return idle(int(argv[2]), int(argv[3]), [int(n) for n in argv[4:]],
                    argv[1] == "idle-tls")
    sys.stderr.write(__doc__)
    return 64


if __name__ == "__main__":
    sys.exit(main(sys.argv))
