"""test_dovecot - reading the mail: Dovecot serves pollsmtpd's Maildirs over IMAP.

What doc/dovecot.md tells an administrator, done for real: a Dovecot
(Debian's dovecot-imapd) with a private configuration in a temporary
directory (no system configuration, no system service), on 127.0.0.1
and a free high port, with virtual users from a passwd-file whose mail
is maildir:ROOT/%n, ROOT being pollsmtpd's Maildir root, and every
mailbox accessed as the one user pollsmtpd runs as.
  - a message delivered by pollsmtpd, fetched with imaplib, is byte for
    byte the stored file with CRLF line ends (IMAP's), and that file is
    the added Return-Path:, Delivered-To: and Received: lines followed by
    exactly the message sent (dot-stuffing undone, 8-bit bytes kept);
  - a message delivered while Dovecot runs shows up in the open mailbox;
  - each user sees their own mailbox only; a wrong password is refused;
  - what Dovecot adds to the tree (index files, new/ -> cur/) leaves it
    sound for `maildir-inspect check`.
Skipped, with the reason, when dovecot is not installed (apt-get install
dovecot-imapd; ./bootstrap --deps does it).
"""

import imaplib
import os
import pwd
import grp
import shutil
import signal
import socket
import subprocess
import tempfile
import time
import unittest

from harness import (DaemonTestCase, SLOW, daemon_user, free_port,
                     smtp_data)

DOVECOT = shutil.which("dovecot") or (
    "/usr/sbin/dovecot" if os.access("/usr/sbin/dovecot", os.X_OK) else None)
IMAP_LOGIN = "/usr/lib/dovecot/imap-login"
PASSWORDS = {"alice": "alice-secret", "bob": "bob-secret"}
START_TIMEOUT = 20 * SLOW


def inspect_path():
    path = os.environ.get("MAILDIR_INSPECT") or os.path.join(
        os.path.dirname(os.path.abspath(__file__)), "..", "..", "src",
        "maildir-inspect", "maildir-inspect")
    return os.path.abspath(path)


def dovecot_missing():
    """Why Dovecot cannot be run here, or None."""
    if DOVECOT is None:
        return "dovecot is not installed (apt-get install dovecot-imapd)"
    if not os.path.exists(IMAP_LOGIN):
        return "dovecot-imapd is not installed (no %s)" % IMAP_LOGIN
    return None


class Dovecot:
    """One dovecot -F with a private configuration under directory."""

    def __init__(self, directory, mail_root, mail_user, mail_group):
        self.dir = directory
        self.mail_root = mail_root
        self.mail_user = mail_user
        self.mail_group = mail_group
        self.port = None
        self.proc = None

    @property
    def log_path(self):
        return os.path.join(self.dir, "dovecot.log")

    def log(self):
        try:
            with open(self.log_path, errors="replace") as f:
                return f.read()
        except OSError:
            return ""

    def config_text(self):
        # As root, Dovecot's own processes run as its system users; run
        # by anybody else, everything is that user (and no chroot).
        if os.getuid() == 0:
            internal, login, chroot = "dovecot", "dovenull", "login"
        else:
            internal = login = pwd.getpwuid(os.getuid()).pw_name
            chroot = ""
        return """\
# written by tests/e2e/test_dovecot.py: nothing of /etc/dovecot is read
base_dir = %(dir)s/run
state_dir = %(dir)s/state
log_path = %(dir)s/dovecot.log
protocols = imap
listen = 127.0.0.1
ssl = no
disable_plaintext_auth = no
auth_mechanisms = plain
default_internal_user = %(internal)s
default_internal_group = %(internal_group)s
default_login_user = %(login)s
first_valid_uid = %(uid)d
last_valid_uid = %(uid)d

# The mailboxes: pollsmtpd's Maildirs, all of them the files of the
# user pollsmtpd runs as.
mail_location = maildir:%(root)s/%%n
mail_uid = %(mail_user)s
mail_gid = %(mail_group)s

passdb {
  driver = passwd-file
  args = scheme=PLAIN username_format=%%n %(dir)s/users
}
userdb {
  driver = static
  args = uid=%(mail_user)s gid=%(mail_group)s home=%(dir)s/home/%%n
}

service imap-login {
  chroot = %(chroot)s
  inet_listener imap {
    address = 127.0.0.1
    port = %(port)d
  }
  inet_listener imaps {
    port = 0
  }
}
""" % dict(dir=self.dir, root=self.mail_root, port=self.port,
           internal=internal,
           internal_group=grp.getgrgid(pwd.getpwnam(internal).pw_gid).gr_name,
           login=login, chroot=chroot,
           uid=pwd.getpwnam(self.mail_user).pw_uid,
           mail_user=self.mail_user, mail_group=self.mail_group)

    def start(self):
        for sub in ("run", "state", "home"):
            os.makedirs(os.path.join(self.dir, sub), exist_ok=True)
        # The mail processes (the mail user) keep their home here.
        home = os.path.join(self.dir, "home")
        if os.getuid() == 0:
            pw = pwd.getpwnam(self.mail_user)
            os.chown(home, pw.pw_uid, pw.pw_gid)
        with open(os.path.join(self.dir, "users"), "w") as f:
            for user, password in sorted(PASSWORDS.items()):
                f.write("%s:{PLAIN}%s::::::\n" % (user, password))
        conf = os.path.join(self.dir, "dovecot.conf")
        last = ""
        for _attempt in range(3):
            self.port = free_port()
            with open(conf, "w") as f:
                f.write(self.config_text())
            check = subprocess.run([DOVECOT, "-c", conf, "-n"],
                                   stdout=subprocess.PIPE,
                                   stderr=subprocess.STDOUT)
            if check.returncode != 0:
                raise AssertionError("dovecot -n refuses the configuration:"
                                     "\n%s" % check.stdout.decode())
            with open(self.log_path, "ab") as log:
                self.proc = subprocess.Popen(
                    [DOVECOT, "-F", "-c", conf], stdin=subprocess.DEVNULL,
                    stdout=log, stderr=log)
            if self._wait_ready():
                return self
            last = self.log()
            self.stop()
            if "in use" not in last:
                break
        raise AssertionError("dovecot did not start; its log:\n%s" % last)

    def _wait_ready(self):
        deadline = time.monotonic() + START_TIMEOUT
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                return False
            try:
                with socket.create_connection(("127.0.0.1", self.port),
                                              timeout=2) as s:
                    s.settimeout(5 * SLOW)
                    if s.recv(1024).startswith(b"* OK"):
                        return True
            except OSError:
                time.sleep(0.05)
        return False

    def stop(self):
        if self.proc is None:
            return None
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(20 * SLOW)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        status, self.proc = self.proc.returncode, None
        return status

    def imap(self, user):
        m = imaplib.IMAP4("127.0.0.1", self.port, timeout=10 * SLOW)
        m.login(user, PASSWORDS[user])
        return m


# The message as the client means it: LF here, sent as CRLF lines, with a
# line that starts with a dot (dot-stuffed on the wire), 8-bit text, an
# empty line inside the body and trailing white space.
MESSAGE = (b"From: Sender <sender@example.net>\n"
           b"To: Alice <alice@example.org>\n"
           b"Subject: read with Dovecot\n"
           b"MIME-Version: 1.0\n"
           b"Content-Type: text/plain; charset=utf-8\n"
           b"Content-Transfer-Encoding: 8bit\n"
           b"\n"
           b"Hello Alice,\n"
           b".a line that starts with a dot\n"
           b"..and one with two\n"
           b"\n"
           b"Gr\xc3\xbc\xc3\x9fe, caf\xc3\xa9   \n"
           b"-- \n"
           b"sender\n")


@unittest.skipIf(dovecot_missing(), dovecot_missing() or "")
class ReadWithDovecot(DaemonTestCase):
    daemon_opts = dict(domains=["example.org"], users=["alice", "bob"],
                       postmaster="alice")

    def setUp(self):
        super().setUp()
        # Dovecot's mail processes, as the daemon's user, must reach the
        # Maildir root inside the test's private directory.
        os.chmod(self.d.dir, 0o755)
        self.dc_dir = tempfile.mkdtemp(prefix="pollsmtpd-dovecot-")
        os.chmod(self.dc_dir, 0o755)
        self.addCleanup(shutil.rmtree, self.dc_dir, True)
        user, group = daemon_user()
        self.dovecot = Dovecot(self.dc_dir, self.d.root, user, group)
        self.addCleanup(self._stop_dovecot)

    def _stop_dovecot(self):
        status = self.dovecot.stop()
        if status not in (None, 0):
            raise AssertionError("dovecot exited with %r; log:\n%s"
                                 % (status, self.dovecot.log()))

    def deliver(self, rcpt, message=MESSAGE):
        c = self.client()
        c.hello()
        r = c.transaction("sender@example.net", [rcpt], smtp_data(message))
        self.assertEqual((r.code, r.enhanced), (250, "2.0.0"), r)
        c.cmd("QUIT")
        return r.queued_id()

    def stored(self, user, msgid):
        """The file of msgid in new/, or in cur/ once Dovecot moved it
        there (it adds ":2,FLAGS" to the name, never changes the bytes)."""
        found = [(sub, n) for sub in ("new", "cur")
                 for n in self.d.files(user, sub) if ".%s." % msgid in n]
        self.assertEqual(len(found), 1, found)
        sub, name = found[0]
        return self.d.read(user, name, sub)

    def fetch_all(self, m):
        """{sequence number: BODY[]} of the selected mailbox (PEEK)."""
        typ, data = m.search(None, "ALL")
        self.assertEqual(typ, "OK")
        out = {}
        for num in data[0].split():
            typ, parts = m.fetch(num, "(BODY.PEEK[])")
            self.assertEqual(typ, "OK", parts)
            out[int(num)] = parts[0][1]
        return out

    def test_fetch_is_byte_for_byte(self):
        msgid = self.deliver("alice@example.org")
        stored = self.stored("alice", msgid)
        # What pollsmtpd wrote: its three trace lines, then the message.
        self.assertTrue(stored.startswith(
            b"Return-Path: <sender@example.net>\n"
            b"Delivered-To: alice@example.org\n"
            b"Received: from "), stored[:200])
        self.assertTrue(stored.endswith(b"\n" + MESSAGE), stored)
        trace = stored[:len(stored) - len(MESSAGE)]
        self.assertIn(msgid.encode(), trace)

        self.dovecot.start()
        m = self.dovecot.imap("alice")
        try:
            typ, data = m.select("INBOX")
            self.assertEqual((typ, data), ("OK", [b"1"]))
            got = self.fetch_all(m)
            self.assertEqual(list(got), [1])
            crlf = stored.replace(b"\n", b"\r\n")
            self.assertEqual(got[1], crlf)
            # The part after the trace lines is exactly what was sent.
            self.assertEqual(got[1][len(trace.replace(b"\n", b"\r\n")):],
                             MESSAGE.replace(b"\n", b"\r\n"))

            # A message delivered now shows up in the open mailbox.
            second = b"Subject: while Dovecot runs\n\nsecond\n"
            msgid2 = self.deliver("alice@example.org", second)
            stored2 = self.stored("alice", msgid2)
            deadline = time.monotonic() + 10 * SLOW
            while True:
                m.noop()
                typ, data = m.search(None, "ALL")
                if len(data[0].split()) == 2 or time.monotonic() > deadline:
                    break
                time.sleep(0.1)
            got = self.fetch_all(m)
            self.assertEqual(sorted(got), [1, 2])
            self.assertEqual(got[2], stored2.replace(b"\n", b"\r\n"))
            self.assertTrue(got[2].endswith(b"\r\n\r\nsecond\r\n"))
        finally:
            m.logout()
        # Dovecot's index files and the moves to cur/ leave a tree that
        # pollsmtpd's own check still finds sound.
        r = subprocess.run([inspect_path(), "-d", self.d.root, "check"],
                           stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
        self.assertEqual(r.returncode, 0, r.stdout.decode())

    def test_each_user_sees_their_own(self):
        self.deliver("alice@example.org")
        msgid = self.deliver("bob@example.org",
                             b"Subject: for bob\n\nonly bob\n")
        self.dovecot.start()
        m = self.dovecot.imap("bob")
        try:
            self.assertEqual(m.select("INBOX"), ("OK", [b"1"]))
            got = self.fetch_all(m)
            self.assertEqual(got[1],
                             self.stored("bob", msgid).replace(b"\n", b"\r\n"))
        finally:
            m.logout()
        with self.assertRaises(imaplib.IMAP4.error):
            m = imaplib.IMAP4("127.0.0.1", self.dovecot.port,
                              timeout=10 * SLOW)
            try:
                m.login("alice", "bob-secret")
            finally:
                m.shutdown()


if __name__ == "__main__":
    unittest.main()
