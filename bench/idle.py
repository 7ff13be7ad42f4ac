#!/usr/bin/env python3
"""idle.py - helpers of bench/run that need sockets: wait, probe, idle.

usage:
  idle.py wait PORT                  wait (at most 10 s) until 127.0.0.1:PORT
                                     greets with 220; exit 1 if it never does
  idle.py probe PORT                 one whole SMTP transaction; prints the
                                     milliseconds it took
  idle.py idle PORT PID N [N...]     open N idle connections (each greeted),
                                     then print for each N one line
                                     "N RSS_BYTES PROBE_MS ANSWER_MS
                                     ANSWER_MAX_MS CPU_PCT" (below)
  idle.py load PORT SECONDS          whole transactions one after another
  idle.py idle-tls PORT PID N [N...] the same with connections that did
                                     EHLO, STARTTLS and EHLO again
                                     for SECONDS (the client that delivers
                                     while idle ones are asked to answer)

For each N of "idle", once the connections have been left alone for a
second (time enough for the server to notice they are idle):
  RSS_BYTES      VmRSS of process PID
  PROBE_MS       a new client's whole transaction (connect ... 221), the
                 median of PROBES of them, 0.1 s apart
import ssl
  ANSWER_MS      an idle connection sends NOOP, the time until its 250:
  ANSWER_MAX_MS  the median and the largest of ANSWERS idle connections
                 (spread over all, each idle for at least a second), asked
                 one after another while another client delivers (a
                 "load" process, started for this and stopped after)
  CPU_PCT        only for the largest N (else "-"): the CPU time of PID
                 and its children (the logger) over CPU_SECONDS with the
                 N connections and no traffic at all, in % of one core

Only 127.0.0.1 is ever contacted. Every socket operation has a timeout, so
nothing here can hang the benchmark.
"""

import os
import selectors
import socket
import statistics
import subprocess
import sys
import time

TIMEOUT = 10.0
PROBES = 5
ANSWERS = 20
CPU_SECONDS = 5.0
SETTLE = 1.0            # seconds idle connections are left alone first
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


def cpu_seconds(pid):
    """CPU time used so far by pid and its children, in seconds: from
    /proc/PID/sched (nanosecond accounting) when there, else from the
    clock ticks of /proc/PID/stat."""
    pids = [pid]
    try:
        for task in os.listdir("/proc/%d/task" % pid):
            with open("/proc/%d/task/%s/children" % (pid, task)) as f:
                pids += [int(p) for p in f.read().split()]
    except OSError:
        pass
    total = 0.0
    for p in pids:
        try:
            with open("/proc/%d/sched" % p) as f:
                for line in f:
                    if line.startswith("se.sum_exec_runtime"):
                        total += float(line.split(":")[1]) / 1000.0
                        break
                else:
                    raise OSError("no sum_exec_runtime")
        except OSError:
            with open("/proc/%d/stat" % p) as f:
                fields = f.read().rsplit(")", 1)[1].split()
            total += (int(fields[11]) + int(fields[12])) \
                / os.sysconf("SC_CLK_TCK")
    return total


def noop_ms(sock):
    """An idle, greeted connection says NOOP: milliseconds until its 250."""
    sock.setblocking(True)
    sock.settimeout(TIMEOUT)
    start = time.monotonic()
    sock.sendall(b"NOOP\r\n")
    code, _ = reply(sock, b"")
    ms = (time.monotonic() - start) * 1000.0
    if code != 250:
        raise OSError("NOOP got %d" % code)
    sock.setblocking(False)
    return ms


def answers(port, socks):
    """ANSWERS idle connections answer NOOP while a client delivers."""
    loader = subprocess.Popen([sys.executable, os.path.abspath(__file__),
                               "load", str(port), "60"],
                              stdout=subprocess.DEVNULL)
    try:
        time.sleep(0.3)         # the loader is delivering
        step = max(1, len(socks) // ANSWERS)
        times = []
        for sock in socks[::step][:ANSWERS]:
            times.append(noop_ms(sock))
            time.sleep(0.05)
        if loader.poll() is not None:
            raise OSError("the delivering client failed")
    finally:
        loader.terminate()
        loader.wait()
    return statistics.median(times), max(times)


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
    print("0 %d 0 - - -" % rss(pid))
    socks = []
    try:
        for n in counts:
            if tls:
                open_idle_tls(port, socks, n)
            else:
                open_idle(port, socks, n)
            time.sleep(SETTLE)	# the server has noticed they are idle
            size = rss(pid)
            probes = []
            for _ in range(PROBES):
                probes.append(transaction(port))
                time.sleep(0.1)
            cpu = "-"
            if n == max(counts):
                time.sleep(SETTLE)
                before = cpu_seconds(pid)
                time.sleep(CPU_SECONDS)
                cpu = "%.2f" % ((cpu_seconds(pid) - before)
                                / CPU_SECONDS * 100.0)
            time.sleep(SETTLE)
            med, worst = answers(port, socks)
            print("%d %d %.2f %.2f %.2f %s" % (n, size,
                  statistics.median(probes), med, worst, cpu))
            sys.stdout.flush()
    finally:
        for s in socks:
            s.close()
    return 0


def load(port, seconds):
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        transaction(port)
    return 0


def main(argv):
    if len(argv) >= 3 and argv[1] == "wait":
        return wait(int(argv[2]))
    if len(argv) >= 3 and argv[1] == "probe":
        print("%.2f" % transaction(int(argv[2])))
        return 0
    if len(argv) == 4 and argv[1] == "load":
        return load(int(argv[2]), float(argv[3]))
    if len(argv) >= 5 and argv[1] in ("idle", "idle-tls"):
        return idle(int(argv[2]), int(argv[3]), [int(n) for n in argv[4:]],
                    argv[1] == "idle-tls")
    sys.stderr.write(__doc__)
    return 64


if __name__ == "__main__":
    sys.exit(main(sys.argv))
