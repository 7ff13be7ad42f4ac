"""test_notify - the daemon tells systemd when it serves (Type=notify).

systemd starts a Type=notify service with $NOTIFY_SOCKET naming an
AF_UNIX datagram socket and waits for "READY=1" from the main process.
Here the test plays systemd: it binds the socket (a path, and an
abstract '@' name) and starts the built daemon with the variable set.
  - READY=1 arrives, once, from the daemon's own pid (what systemd checks
    with NotifyAccess=main), and when it arrives the daemon already
    greets on its port: no connection attempt needs a retry;
  - a start that fails (the port is taken) sends no READY=1 and exits 71;
  - a $NOTIFY_SOCKET nobody listens on does not stop the daemon: it
    serves, and logs a warning.
"""

import os
import select
import shutil
import socket
import struct
import subprocess
import tempfile
import time
import unittest

from harness import (Daemon, START_TIMEOUT, STOP_TIMEOUT,
                     smtp_data)


def notify_receiver(name):
    """A datagram socket bound where NOTIFY_SOCKET=name points."""
    s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_PASSCRED, 1)
    if name.startswith("@"):
        s.bind("\0" + name[1:])
    else:
        # Like systemd's /run/systemd/notify: writable by the daemon
        # once it has dropped root.
        s.bind(name)
        os.chmod(os.path.dirname(name), 0o755)
        os.chmod(name, 0o666)
    return s


def receive(s, timeout):
    """(bytes, sender pid) of one datagram, or (None, None) at timeout."""
    r, _w, _x = select.select([s], [], [], timeout)
    if not r:
        return None, None
    data, anc, _flags, _addr = s.recvmsg(
        4096, socket.CMSG_SPACE(struct.calcsize("3i")))
    pid = None
    for level, kind, payload in anc:
        if level == socket.SOL_SOCKET and kind == socket.SCM_CREDENTIALS:
            pid = struct.unpack("3i", payload[:struct.calcsize("3i")])[0]
    return data, pid


class NotifyDaemon(Daemon):
    """A Daemon started with NOTIFY_SOCKET set, ready when READY=1 says
    so (not when its port answers): start() fails if the port does not
    greet at the first attempt once READY=1 has come."""

    def __init__(self, notify_name, receiver, **opts):
        super().__init__(**opts)
        self.notify_name = notify_name
        self.receiver = receiver
        self.ready = None

    def start(self):
        old = os.environ.get("NOTIFY_SOCKET")
        os.environ["NOTIFY_SOCKET"] = self.notify_name
        try:
            return super().start()
        finally:
            if old is None:
                del os.environ["NOTIFY_SOCKET"]
            else:
                os.environ["NOTIFY_SOCKET"] = old

    def _wait_ready(self):
        deadline = time.monotonic() + START_TIMEOUT
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                return False
            data, pid = receive(self.receiver, 0.05)
            if data is None:
                continue
            self.ready = (data, pid)
            # Told it serves: it must greet now, at the first attempt.
            with socket.create_connection(("127.0.0.1", self.port),
                                          timeout=5) as s:
                greeting = s.recv(4096)
                if not greeting.startswith(b"220 "):
                    raise AssertionError("greeting after READY=1: %r"
                                         % greeting)
                s.sendall(b"QUIT\r\n")
            return True
        return False


class Ready(unittest.TestCase):
    def setUp(self):
        self.tmp = tempfile.mkdtemp(prefix="pollsmtpd-notify-")
        self.addCleanup(shutil.rmtree, self.tmp, True)

    def serve_and_check(self, name):
        receiver = notify_receiver(name)
        self.addCleanup(receiver.close)
        d = NotifyDaemon(name, receiver)
        d.start()
        try:
            self.assertEqual(d.ready, (b"READY=1", d.proc.pid))
            # Once only.
            self.assertEqual(receive(receiver, 0.3), (None, None))
            with d.client() as c:
                c.hello()
                r = c.transaction("s@x.example", ["alice@example.org"],
                                  smtp_data(b"Subject: notify\n\nhi\n"))
                self.assertEqual(r.code, 250, r)
        finally:
            d.stop()

    def test_path(self):
        self.serve_and_check(os.path.join(self.tmp, "notify"))

    def test_abstract(self):
        self.serve_and_check("@pollsmtpd-test-notify/%d" % os.getpid())

    def test_failed_start_says_nothing(self):
        name = os.path.join(self.tmp, "notify")
        receiver = notify_receiver(name)
        self.addCleanup(receiver.close)
        blocker = socket.socket()
        self.addCleanup(blocker.close)
        blocker.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        blocker.bind(("127.0.0.1", 0))
        blocker.listen(1)
        d = Daemon()
        d.dir = tempfile.mkdtemp(prefix="pollsmtpd-e2e-", dir=self.tmp)
        d.port = blocker.getsockname()[1]
        with open(d.conf_path, "w") as f:
            f.write(d.config_text())
        env = dict(os.environ, NOTIFY_SOCKET=name)
        with open(d.log_path, "wb") as log:
            rc = subprocess.call(d.command(), env=env, stdin=subprocess.DEVNULL,
                                 stdout=log, stderr=log, cwd=d.dir,
                                 timeout=STOP_TIMEOUT + START_TIMEOUT)
        self.assertEqual(rc, 71, d.log())
        self.assertIn("cannot listen on 127.0.0.1:%d" % d.port, d.log())
        self.assertEqual(receive(receiver, 0.2), (None, None))

    def test_nobody_listens(self):
        name = os.path.join(self.tmp, "nobody-here")
        receiver = notify_receiver(os.path.join(self.tmp, "other"))
        self.addCleanup(receiver.close)
        old = os.environ.get("NOTIFY_SOCKET")
        os.environ["NOTIFY_SOCKET"] = name
        try:
            d = Daemon()
            d.start()
        finally:
            if old is None:
                del os.environ["NOTIFY_SOCKET"]
            else:
                os.environ["NOTIFY_SOCKET"] = old
        try:
            with d.client() as c:
                c.expect_ok("NOOP", 250, "2.0.0")
            self.assertTrue(d.wait_for(
                lambda: "cannot tell systemd that we serve" in d.log()),
                d.log_tail())
        finally:
            d.stop()


if __name__ == "__main__":
    unittest.main()
