"""test_logger - the logger process, as an administrator sees it.

The daemon forks a logger at start and feeds it through a POSIX message
queue; these tests read the log file it writes while real clients send
mail, and treat the logger roughly: stop it, kill it, kill the daemon
under it, move its file away.
"""

import os
import re
import shutil
import signal
import tempfile
import threading
import time
import unittest

from harness import (Daemon, HELO, SLOW, children_of, give_to_daemon_user,
                     running, smtp_data)


def wait_until(predicate, timeout):
    deadline = time.monotonic() + timeout * SLOW
    while time.monotonic() < deadline:
        v = predicate()
        if v:
            return v
        time.sleep(0.02)
    return predicate()


class LoggerCase(unittest.TestCase):
    debug = True

    def setUp(self):
        self.logdir = tempfile.mkdtemp(prefix="pollsmtpd-log-")
        # The logger reopens the file (SIGHUP) as the daemon's user.
        give_to_daemon_user(self.logdir)
        self.addCleanup(shutil.rmtree, self.logdir, True)
        self.logfile = os.path.join(self.logdir, "pollsmtpd.log")
        self.d = Daemon(log_file=self.logfile, debug=self.debug).start()
        self.addCleanup(self.stop)

    def stop(self):
        # Also when a test stopped the daemon itself: removes its files.
        self.d.stop()

    def logger_pid(self):
        kids = children_of(self.d.proc.pid)
        return kids[0] if len(kids) == 1 else None

    def log(self, path=None):
        try:
            with open(path or self.logfile, "rb") as f:
                return f.read().decode("latin-1")
        except OSError:
            return ""

    def send_one(self, rcpt="alice@example.org", source=None):
        with self.d.client(source=source) as c:
            c.hello()
            r = c.transaction("s@x.example", [rcpt],
                              smtp_data(b"Subject: log\n\nx\n"))
            self.assertEqual(r.code, 250, r)
            c.expect_ok("QUIT", 221)
            return r.queued_id()

    def wait_log(self, needle, path=None, timeout=3, count=1):
        return wait_until(lambda: self.log(path).count(needle) >= count,
                          timeout)


class Records(LoggerCase):
    def test_session_in_order_with_the_id_the_client_saw(self):
        msgid = self.send_one()
        # The harness's start-up probe was the first session; ours, the second.
        self.assertTrue(self.wait_log("disconnect from", count=2), self.log())
        all_lines = self.log().splitlines()
        rec = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z "
                         r"(DEBUG|INFO|WARN|ERROR) (\S+) ")
        for line in all_lines:
            self.assertRegex(line, rec)
        # Our session (not the harness's start-up probe), in order.
        sid = next(rec.match(l).group(2) for l in all_lines
                   if "EHLO " + HELO in l)
        lines = [l for l in all_lines
                 if rec.match(l).group(2) in (sid, msgid)]
        order = ["connect from [127.0.0.1]", "EHLO " + HELO,
                 "from=<s@x.example>", "to=<alice@example.org>",
                 "queued as " + msgid, "QUIT", "disconnect from"]
        at = [next((i for i, l in enumerate(lines) if o in l), -1)
              for o in order]
        self.assertNotIn(-1, at, list(zip(order, at)))
        self.assertEqual(at, sorted(at), list(zip(order, at)))
        # The message's own records carry its ID.
        self.assertTrue(any(" INFO %s " % msgid in l for l in lines),
                        "no record under the ID %s" % msgid)
        self.assertTrue(any(" DEBUG " in l for l in lines))

    def test_disconnect_logged_at_quit_not_when_the_client_closes(self):
        # A client that reads its 221 and keeps the socket open: the
        # session is over, and its record is there before the client
        # goes (the lingering close would hold it up to 5 s).
        with self.d.client() as c:
            c.hello()
            c.expect_ok("QUIT", 221)
            self.assertTrue(self.wait_log("disconnect from", count=2,
                                          timeout=2), self.log())
            self.assertRegex(self.log(), r"disconnect from \[127\.0\.0\.1\]"
                             r" ehlo=1 quit=1 commands=2 \(closed\)")
        # Closing afterwards adds no second record.
        self.send_one()
        self.assertTrue(self.wait_log("disconnect from", count=3))
        self.assertEqual(self.log().count("disconnect from"), 3, self.log())

    def test_hostile_bytes_are_escaped_on_one_line(self):
        with self.d.client() as c:
            c.send(b"EHLO evil\rINFO forged\x00name\r\n")
            c.expect(500, "5.5.2")
            c.send(b"EHLO x\r\nMAIL FROM:<a\x01\x7f@x>\r\n")
            c.expect(250)
            c.expect(501)
            c.expect_ok("QUIT", 221)
        self.assertTrue(self.wait_log("disconnect from", count=2))
        log = self.log()
        self.assertIn(r'refused line: "EHLO evil\x0dINFO forged\x00name"', log)
        self.assertIn(r"MAIL FROM:<a\x01\x7f@x>", log)
        for line in log.splitlines():
            self.assertRegex(line, r"^\d{4}-\d\d-\d\dT")


class NoDebug(LoggerCase):
    debug = False

    def test_debug_off_omits_debug_records(self):
        self.send_one()
        self.assertTrue(self.wait_log("disconnect from", count=2))
        self.assertNotIn(" DEBUG ", self.log())
        self.assertIn(" INFO ", self.log())


class StuckLogger(LoggerCase):
    def test_stopped_logger_does_not_delay_mail(self):
        logger = self.logger_pid()
        self.assertIsNotNone(logger)
        os.kill(logger, signal.SIGSTOP)
        try:
            ids, errors = [], []
            lock = threading.Lock()

            def client():
                try:
                    msgid = self.send_one()
                    with lock:
                        ids.append(msgid)
                except Exception as e:      # reported below
                    with lock:
                        errors.append(e)
            start = time.monotonic()
            threads = [threading.Thread(target=client) for _ in range(50)]
            for t in threads:
                t.start()
            for t in threads:
                t.join(30 * SLOW)
            elapsed = time.monotonic() - start
            self.assertEqual(errors, [])
            self.assertEqual(len(ids), 50)
            # Fifty clients, while nobody reads the log queue.
            self.assertLess(elapsed, 10 * SLOW)
        finally:
            os.kill(logger, signal.SIGCONT)
        self.assertTrue(self.wait_log("queued as " + ids[-1], timeout=5))
        log = self.log()
        m = re.search(r"log backlog full: (\d+) records dropped", log)
        missing = [i for i in ids if "queued as " + i not in log]
        if m is None:
            self.assertEqual(missing, [], "records lost without a word")
        else:
            self.assertGreater(int(m.group(1)), 0)


class KilledLogger(LoggerCase):
    def test_killed_logger_is_replaced_within_a_second(self):
        old = self.logger_pid()
        self.assertIsNotNone(old)
        os.kill(old, signal.SIGKILL)
        new = wait_until(lambda: (self.logger_pid() not in (None, old))
                         and self.logger_pid(), 1.0)
        self.assertTrue(new, "no new logger within a second")
        self.assertTrue(running(new))
        msgid = self.send_one()
        self.assertTrue(self.wait_log("queued as " + msgid), self.log())
        self.assertIn("killed by signal 9", self.log())

    def test_quick_second_death_is_replaced_after_its_delay(self):
        # A logger that dies soon after its start is replaced after a
        # delay; the idle daemon (no client) must wake for it by itself.
        first = self.logger_pid()
        self.assertIsNotNone(first)
        os.kill(first, signal.SIGKILL)
        second = wait_until(lambda: (self.logger_pid() not in (None, first))
                            and self.logger_pid(), 1.0)
        self.assertTrue(second, "no second logger")
        os.kill(second, signal.SIGKILL)
        third = wait_until(lambda: (self.logger_pid()
                                    not in (None, first, second))
                           and self.logger_pid(), 3.0)
        self.assertTrue(third, "no third logger without traffic")
        msgid = self.send_one()
        self.assertTrue(self.wait_log("queued as " + msgid), self.log())
        self.assertIn("starting a new one in 100 ms", self.log())


class KilledDaemon(LoggerCase):
    def test_logger_exits_with_its_daemon(self):
        logger = self.logger_pid()
        self.assertIsNotNone(logger)
        self.send_one()
        self.d.proc.kill()
        self.d.proc.wait(10 * SLOW)
        self.d.proc = None
        gone = wait_until(lambda: not running(logger), 3)
        self.assertTrue(gone, "logger %d outlived the daemon" % logger)
        if os.path.isdir("/dev/mqueue"):
            self.assertEqual([q for q in os.listdir("/dev/mqueue")
                              if q.startswith("pollsmtpd.")], [])
        # What the daemon said before it died is in the log.
        self.assertIn("disconnect from", self.log())


class Rotation(LoggerCase):
    def test_sighup_reopens_at_the_configured_path(self):
        first = self.send_one()
        self.assertTrue(self.wait_log("queued as " + first))
        rotated = self.logfile + ".1"
        os.rename(self.logfile, rotated)
        self.d.signal(signal.SIGHUP)
        self.assertTrue(wait_until(lambda: os.path.exists(self.logfile), 3),
                        "no new log file after SIGHUP")
        second = self.send_one()
        self.assertTrue(self.wait_log("queued as " + second))
        self.assertIn("queued as " + first, self.log(rotated))
        self.assertNotIn("queued as " + second, self.log(rotated))


class Shutdown(LoggerCase):
    def test_sigterm_flushes_every_record(self):
        msgid = self.send_one()
        logger = self.logger_pid()
        self.d.signal(signal.SIGTERM)
        self.assertEqual(self.d.proc.wait(10 * SLOW), 0)
        self.d.proc = None
        self.assertTrue(wait_until(lambda: not running(logger), 3))
        log = self.log()
        self.assertIn("queued as " + msgid, log)
        self.assertTrue(log.rstrip("\n").endswith("pollsmtpd stopped"),
                        log[-300:])


if __name__ == "__main__":
    unittest.main()
