"""test_clients - real SMTP clients (swaks, curl) deliver through the
daemon; the bytes on disk are checked. Loopback addresses only, never a
DNS lookup: the HELO name is always given."""

import os
import re
import shutil
import subprocess
import unittest

from harness import DaemonTestCase, HELO, SLOW

MESSAGE = (b"From: Sender <s@x.example>\n"
           b"To: Alice <alice@example.org>\n"
           b"Subject: real client\n"
           b"\n"
           b".one leading dot\n"
           b"..two leading dots\n"
           b".\n"
           b"plain line\n"
           b"8-bit: caf\xc3\xa9\n"
           b"last\n")

QUEUED = re.compile(r"250[ -]2\.0\.0 .*queued as ([A-Za-z0-9]+)")


def run(cmd, timeout=30):
    return subprocess.run(cmd, stdin=subprocess.DEVNULL,
                          stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                          timeout=timeout * SLOW)


class Clients(DaemonTestCase):

    def write(self, name, data):
        path = os.path.join(self.d.dir, name)
        with open(path, "wb") as f:
            f.write(data)
        return path

    def queued_id(self, proc):
        out = (proc.stdout + proc.stderr).decode("latin-1")
        self.assertEqual(proc.returncode, 0, out)
        ids = QUEUED.findall(out)
        self.assertEqual(len(ids), 1, out)
        return ids[0]


@unittest.skipUnless(shutil.which("swaks"), "swaks is not installed")
class Swaks(Clients):

    def swaks(self, *args):
        return run(["swaks", "--server", "127.0.0.1",
                    "--port", str(self.d.port), "--helo", HELO,
                    "--timeout", "10s"] + list(args))

    # swaks ends the data with CRLF.CRLF after the file's text, so a file
    # that ends in a newline gains an empty line: give it none.
    def test_swaks_data_file(self):
        path = self.write("msg", MESSAGE[:-1])
        p = self.swaks("--from", "s@x.example", "--to", "alice@example.org",
                       "--data", "@" + path)
        msgid = self.queued_id(p)
        self.assertDelivered("alice", msgid, "s@x.example",
                             "alice@example.org", MESSAGE)

    def test_swaks_pipelining_two_recipients(self):
        path = self.write("msg", MESSAGE[:-1])
        p = self.swaks("--pipeline", "--from", "s@x.example",
                       "--to", "alice@example.org,bob@example.org",
                       "--data", "@" + path)
        msgid = self.queued_id(p)
        self.assertDelivered("alice", msgid, "s@x.example",
                             "alice@example.org", MESSAGE)
        self.assertDelivered("bob", msgid, "s@x.example",
                             "bob@example.org", MESSAGE)

    def test_swaks_default_message(self):
        p = self.swaks("--from", "s@x.example", "--to", "bob@example.org",
                       "--header", "Subject: swaks default",
                       "--body", "hello from swaks")
        msgid = self.queued_id(p)
        names = self.d.files("bob")
        self.assertEqual(len(names), 1)
        data = self.d.read("bob", names[0])
        self.assertIn(b"\nSubject: swaks default\n", data)
        self.assertIn(b"\n\nhello from swaks\n", data)
        self.assertNotIn(b"\r", data)
        self.assertIn((" id %s; " % msgid).encode(), data)

    def test_swaks_unknown_user(self):
        p = self.swaks("--from", "s@x.example", "--to", "nobody@example.org",
                       "--body", "x")
        out = (p.stdout + p.stderr).decode("latin-1")
        self.assertNotEqual(p.returncode, 0, out)
        self.assertRegex(out, r"<\*\* +550[ -]5\.1\.1")
        self.assertEqual(self.d.files("alice") + self.d.files("bob"), [])


@unittest.skipUnless(shutil.which("curl"), "curl is not installed")
class Curl(Clients):

    def curl(self, *args):
        return run(["curl", "-sS", "-v", "--connect-timeout", "5",
                    "--max-time", "20",
                    "smtp://127.0.0.1:%d/%s" % (self.d.port, HELO)]
                   + list(args))

    def test_curl_crlf_file(self):
        path = self.write("msg", MESSAGE.replace(b"\n", b"\r\n"))
        p = self.curl("--mail-from", "s@x.example",
                      "--mail-rcpt", "alice@example.org",
                      "--mail-rcpt", "bob@example.org",
                      "--upload-file", path)
        msgid = self.queued_id(p)
        self.assertDelivered("alice", msgid, "s@x.example",
                             "alice@example.org", MESSAGE)
        self.assertDelivered("bob", msgid, "s@x.example",
                             "bob@example.org", MESSAGE)

    def test_curl_lf_file_with_crlf_option(self):
        path = self.write("msg", MESSAGE)
        p = self.curl("--crlf", "--mail-from", "s@x.example",
                      "--mail-rcpt", "postmaster", "--upload-file", path)
        msgid = self.queued_id(p)
        self.assertDelivered("alice", msgid, "s@x.example", "postmaster",
                             MESSAGE)

    def test_curl_bare_lf_refused(self):
        # Without --crlf curl sends the bare LFs: refused, nothing stored.
        path = self.write("msg", MESSAGE)
        p = self.curl("--mail-from", "s@x.example",
                      "--mail-rcpt", "alice@example.org",
                      "--upload-file", path)
        out = (p.stdout + p.stderr).decode("latin-1")
        self.assertNotEqual(p.returncode, 0, out)
        self.assertRegex(out, r"< 550[ -]5\.5\.2")
        self.assertEqual(self.d.files("alice"), [])


if __name__ == "__main__":
    unittest.main()
