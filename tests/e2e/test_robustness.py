"""test_robustness - defects found by outside suites and an attack, each
seen as a client sees it.

  QueueRemoved      rm -rf of ROOT/.OTHER_SERVERS/.tmp, or of the whole
                    .OTHER_SERVERS, while the daemon runs: the next
                    relayed message is stored (the directories are made
                    again), local mail too; nothing is left in .tmp.
  JunkCommands      100 NOOPs are free; past them each counts as an
                    error, so the error limit ends the session with 421
                    4.7.0 (Postfix's smtpd_junk_command_limit); a client
                    that sends real commands is not cut.
  RefusedData       the attack of one write: MAIL, a refused RCPT, DATA
                    and a message that quotes a whole SMTP dialog; the
                    refused DATA with input waiting ends the session with
                    554 5.5.0, and nothing reaches bob. The same attack
                    with the text in a later packet than the DATA: the
                    first text line is no command, the same 554.
"""

import os
import shutil
import unittest

from harness import DaemonTestCase, smtp_data

MSG = b"Subject: robust\n\nbody\n"


class QueueRemoved(DaemonTestCase):

    def relay_one(self, rcpt="r@remote.example"):
        c = self.client()
        c.hello()
        r = c.transaction("s@x.example", [rcpt], smtp_data(MSG))
        c.expect_ok("QUIT", 221, "2.0.0")
        return r

    def test_tmp_removed(self):
        self.assertEqual(self.relay_one().code, 250)
        shutil.rmtree(os.path.join(self.d.queue_dir(), ".tmp"))
        r = self.relay_one()
        self.assertEqual((r.code, r.enhanced), (250, "2.0.0"), r)
        self.assertEqual(len(self.d.queue_files("remote.example")), 2)
        self.assertEqual(os.listdir(os.path.join(self.d.queue_dir(),
                                                 ".tmp")), [])

    def test_whole_queue_removed(self):
        self.assertEqual(self.relay_one().code, 250)
        shutil.rmtree(self.d.queue_dir())
        r = self.relay_one("r@other.example")
        self.assertEqual((r.code, r.enhanced), (250, "2.0.0"), r)
        self.assertEqual(len(self.d.queue_files("other.example")), 1)
        # The domain seen before the removal works again too.
        r = self.relay_one()
        self.assertEqual((r.code, r.enhanced), (250, "2.0.0"), r)
        self.assertEqual(len(self.d.queue_files("remote.example")), 1)
        # And local mail, whose text also waits in the queue's .tmp/.
        c = self.client()
        c.hello()
        r = c.transaction("s@x.example", ["alice@example.org"],
                          smtp_data(MSG))
        self.assertEqual((r.code, r.enhanced), (250, "2.0.0"), r)


class JunkCommands(DaemonTestCase):

    def test_noop_flood_ends(self):
        c = self.client()
        c.hello()
        for i in range(100 + 19):
            c.expect_ok("NOOP", 250, "2.0.0")
        c.send(b"NOOP\r\n")
        c.expect(250, "2.0.0")
        c.expect(421, "4.7.0")
        self.assertTrue(c.closed())
        c.close()     # else the daemon lingers for our close up to 5 s
        # The disconnect record counts them, as Postfix's does.
        self.assertTrue(self.d.wait_for(
            lambda: " noop=120 commands=121 " in self.d.log(), 5),
            self.d.log_tail())

    def test_real_commands_are_not_junk(self):
        c = self.client()
        for i in range(300):
            c.expect_ok("HELO client%d.example" % i, 250)
        c.expect_ok("NOOP", 250, "2.0.0")


class RefusedData(DaemonTestCase):
    ATTACK_HEAD = (b"MAIL FROM:<me@example.net>\r\n"
                   b"RCPT TO:<nosuch@example.org>\r\nDATA\r\n")
    ATTACK_TEXT = (b"Subject: innocent\r\n\r\n"
                   b"MAIL FROM:<ceo@example.org>\r\n"
                   b"RCPT TO:<bob@example.org>\r\nDATA\r\n"
                   b"Subject: injected\r\n\r\nevil\r\n.\r\n")

    def test_one_write(self):
        c = self.client()
        c.hello()
        c.send(self.ATTACK_HEAD + self.ATTACK_TEXT)
        c.expect(250, "2.1.0")
        c.expect(550, "5.1.1")
        c.expect(503, "5.5.1")
        c.expect(554, "5.5.0")
        self.assertTrue(c.closed())
        self.assertEqual(self.d.files("bob"), [])
        self.assertTrue(self.d.wait_for(
            lambda: "pipelining after a refused DATA" in self.d.log(), 5),
            self.d.log_tail())

    def test_text_in_a_later_packet(self):
        c = self.client()
        c.hello()
        c.send(self.ATTACK_HEAD)
        c.expect(250, "2.1.0")
        c.expect(550, "5.1.1")
        c.expect(503, "5.5.1")
        c.send(self.ATTACK_TEXT)
        c.expect(554, "5.5.0")
        self.assertTrue(c.closed())
        self.assertEqual(self.d.files("bob"), [])


if __name__ == "__main__":
    unittest.main()
