"""test_tls - STARTTLS (RFC 3207) and implicit TLS (RFC 8314) against the
built daemon, with real clients on 127.0.0.1: Python's smtplib
(starttls() and SMTP_SSL), openssl s_client (-starttls smtp, and plain
TLS on a server.listen_tls port), swaks --tls. The certificates are made
by each test with openssl req in a temporary directory.

What a client sees is checked: the EHLO keywords, the replies, the bytes
stored (the Received: line says ESMTPS and names the cipher the client
negotiated), the certificate served (its fingerprint, across a SIGHUP
reload), the exit status and FILE:LINE messages of pollsmtpd -t. The
CVE-2011-0411 injection (commands pipelined after STARTTLS) is sent in
one write and must be neither answered nor run. A client that stalls in
the handshake must not delay another one and is closed after
command_timeout. The memory of idle TLS sessions is measured and printed
(doc/performance.md)."""

import hashlib
import os
import re
import shutil
import signal
import smtplib
import socket
import ssl
import subprocess
import tempfile
import time
import unittest

from harness import (Daemon, HELO, HOSTNAME, SLOW, VALGRIND, DATE_RE,
                     daemon_path, daemon_user, free_port, split_trace)

import pwd

SANITIZERS = os.environ.get("E2E_SANITIZERS", "") == "yes"
OPENSSL = shutil.which("openssl")
MESSAGE = (b"From: Sender <s@x.example>\n"
           b"To: Alice <alice@example.org>\n"
           b"Subject: through TLS\n"
           b"\n"
           b".a leading dot\n"
           b"last line\n")
QUEUED = re.compile(r"250[ -]2\.0\.0 Ok: queued as ([A-Za-z0-9]+)")
IDLE_SESSIONS = 100
IDLE_TLS_BUDGET = 48 * 1024


def run(cmd, timeout=30, input=None):
    return subprocess.run(cmd, input=input, stdout=subprocess.PIPE,
                          stderr=subprocess.PIPE, timeout=timeout * SLOW,
                          stdin=None if input is not None
                          else subprocess.DEVNULL)


def make_pair(directory, name, cn):
    """A self-signed certificate and its key: NAME.crt, NAME.key."""
    cert = os.path.join(directory, name + ".crt")
    key = os.path.join(directory, name + ".key")
    r = run([OPENSSL, "req", "-x509", "-newkey", "ec", "-pkeyopt",
             "ec_paramgen_curve:prime256v1", "-nodes", "-keyout", key,
             "-out", cert, "-days", "2", "-subj", "/CN=" + cn])
    if r.returncode != 0:
        raise AssertionError("openssl req: %s" % r.stderr.decode())
    return cert, key


def fingerprint_of_file(cert):
    with open(cert) as f:
        return hashlib.sha256(ssl.PEM_cert_to_DER_cert(f.read())).hexdigest()


def client_context():
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    return ctx


def give_away(path):
    """The daemon reads the pair again after dropping root (SIGHUP)."""
    if os.getuid() == 0:
        pw = pwd.getpwnam(daemon_user()[0])
        os.chown(path, pw.pw_uid, pw.pw_gid)


def rss_bytes(pid):
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    raise AssertionError("no VmRSS for pid %d" % pid)


class TLSDaemon(Daemon):
    """A Daemon with a tls group and, when implicit, a listen_tls port."""

    def __init__(self, certificate="", key="", implicit=False,
                 min_version=None, **opts):
        super().__init__(**opts)
        self.certificate = certificate
        self.key = key
        self.implicit = implicit
        self.min_version = min_version
        self.port_tls = None

    def config_text(self):
        text = super().config_text()
        if self.implicit:
            self.port_tls = free_port()
            text = text.replace(
                "server = {\n",
                'server = {\n  listen_tls = [ "127.0.0.1:%d" ];\n'
                % self.port_tls, 1)
        text += 'tls = {\n  certificate = "%s";\n  key = "%s";\n' % (
            self.certificate, self.key)
        if self.min_version:
            text += '  min_version = "%s";\n' % self.min_version
        return text + "};\n"


class TLSTestCase(unittest.TestCase):
    """A certificate directory and a fresh TLS daemon for each test."""

    daemon_opts = {}
    implicit = False
    min_version = None

    def setUp(self):
        if OPENSSL is None:
            self.skipTest("openssl not installed")
        self.certs = tempfile.mkdtemp(prefix="pollsmtpd-tls-")
        os.chmod(self.certs, 0o755)
        self.addCleanup(shutil.rmtree, self.certs, True)
        self.cert, self.key = make_pair(self.certs, "server", HOSTNAME)
        give_away(self.cert)
        give_away(self.key)
        self.d = TLSDaemon(self.cert, self.key, implicit=self.implicit,
                           min_version=self.min_version, **self.daemon_opts)
        try:
            self.d.start()
        except AssertionError as e:
            if "built without OpenSSL" in str(e):
                self.skipTest("pollsmtpd built without OpenSSL")
            raise
        self.addCleanup(self._stop)
        if "built without OpenSSL" in self.d.log():
            self.skipTest("pollsmtpd built without OpenSSL")

    def _stop(self):
        alive = self.d.alive()
        self.d.stop()
        self.assertTrue(alive, "daemon died during the test")

    def client(self, **kw):
        c = self.d.client(**kw)
        self.addCleanup(c.close)
        return c

    def starttls(self, c):
        """STARTTLS on a raw Client after EHLO: the socket becomes TLS."""
        c.expect_ok("STARTTLS", 220, "2.0.0")
        self.assertEqual(c.buf, b"", "bytes after the 220: %r" % c.buf)
        c.sock = client_context().wrap_socket(c.sock)
        return c.sock.cipher()

    def smtp(self):
        s = smtplib.SMTP("127.0.0.1", self.d.port, local_hostname=HELO,
                         timeout=10 * SLOW)
        self.addCleanup(s.close)
        return s

    def smtp_ssl(self):
        s = smtplib.SMTP_SSL("127.0.0.1", self.d.port_tls,
                             local_hostname=HELO, timeout=10 * SLOW,
                             context=client_context())
        self.addCleanup(s.close)
        return s

    def send_message(self, s, body=MESSAGE):
        code, _ = s.mail("s@x.example")
        self.assertEqual(code, 250)
        code, _ = s.rcpt("alice@example.org")
        self.assertEqual(code, 250)
        code, text = s.data(body.replace(b"\n", b"\r\n"))
        self.assertEqual(code, 250, text)
        m = re.search(rb"queued as ([A-Za-z0-9]+)", text)
        self.assertIsNotNone(m, text)
        return m.group(1).decode()

    def stored(self, msgid):
        names = [n for n in self.d.files("alice") if ".%s." % msgid in n]
        self.assertEqual(len(names), 1, self.d.files("alice"))
        return self.d.read("alice", names[0])

    def assertReceivedTLS(self, msgid, cipher, body=MESSAGE, proto="ESMTPS"):
        """The stored copy: the Received: line says ESMTPS and names the
        protocol and cipher that the client negotiated."""
        fields, rest = split_trace(self.stored(msgid), 3)
        name, version, bits = cipher
        self.assertRegex(fields[2], re.compile(
            r"^Received: from %s \(\[127\.0\.0\.1\]\) \(using %s with cipher "
            r"%s \(%d/\d+ bits\)\) by %s \(pollsmtpd\) with %s id %s; %s$"
            % (re.escape(HELO), re.escape(version), re.escape(name), bits,
               re.escape(HOSTNAME), proto, re.escape(msgid), DATE_RE)))
        self.assertEqual(rest, body)

    def wait_log(self, pattern, timeout=5):
        found = self.d.wait_for(lambda: re.search(pattern, self.d.log()),
                                timeout)
        self.assertTrue(found, "no %r in the log:\n%s" % (
            pattern, self.d.log_tail()))
        return found


class StartTLS(TLSTestCase):

    def test_smtplib_starttls_delivers(self):
        s = self.smtp()
        code, _ = s.ehlo()
        self.assertEqual(code, 250)
        self.assertTrue(s.has_extn("starttls"), s.esmtp_features)
        code, text = s.starttls(context=client_context())
        self.assertEqual((code, text), (220, b"2.0.0 Ready to start TLS"))
        cipher = s.sock.cipher()
        # The session started over: a new EHLO, and no STARTTLS in it.
        s.ehlo()
        self.assertFalse(s.has_extn("starttls"), s.esmtp_features)
        self.assertTrue(s.has_extn("pipelining"))
        msgid = self.send_message(s)
        s.quit()
        self.assertReceivedTLS(msgid, cipher)
        self.wait_log(r"TLS established: %s with cipher %s" % (
            re.escape(cipher[1]), re.escape(cipher[0])))

    def test_second_starttls_and_argument(self):
        c = self.client()
        c.hello()
        c.expect_ok("STARTTLS now", 501, "5.5.4")
        self.starttls(c)
        c.expect_ok("STARTTLS", 503, "5.5.1")
        r = c.hello()
        self.assertNotIn(b"STARTTLS", b"\n".join(r.lines))
        c.expect_ok("STARTTLS", 503, "5.5.1")
        c.expect_ok("STARTTLS x", 501, "5.5.4")
        c.expect_ok("QUIT", 221)

    def test_session_reset_needs_ehlo(self):
        c = self.client()
        c.hello()
        self.starttls(c)
        r = c.expect_ok("MAIL FROM:<s@x.example>", 503, "5.5.1")
        self.assertIn(b"HELO/EHLO first", r.lines[-1])
        c.hello()
        r = c.transaction("s@x.example", ["alice@example.org"],
                          b"Subject: x\r\n\r\nbody\r\n.\r\n")
        self.assertEqual(r.code, 250, r.lines)

    def test_injection_after_starttls(self):
        """CVE-2011-0411: one write of STARTTLS and more commands. The
        220 is the only reply before TLS (any other would break the
        client's handshake), nothing of it runs after, and it is in no
        log record."""
        c = self.client()
        c.hello()
        c.send(b"STARTTLS\r\nRSET\r\nMAIL FROM:<evil@x>\r\n")
        r = c.expect(220, "2.0.0")
        self.assertEqual(r.lines, [b"220 2.0.0 Ready to start TLS"])
        self.assertEqual(c.buf, b"")
        c.sock = client_context().wrap_socket(c.sock)
        # The injected MAIL did not run: this one is not "nested".
        r = c.expect_ok("MAIL FROM:<s@x.example>", 503, "5.5.1")
        self.assertIn(b"send HELO/EHLO first", r.lines[-1])
        c.expect_ok("QUIT", 221)
        self.assertTrue(c.closed())
        c.close()     # else the daemon lingers for our close up to 5 s
        line = self.wait_log(r"disconnect from .*starttls.*\n").group(0)
        self.assertIn("ehlo=1 starttls=1 mail=0/1 quit=1", line)
        self.assertNotIn("rset", line)
        log = self.d.log()
        self.assertIn("STARTTLS: 26 bytes sent after it before TLS thrown "
                      "away", log)
        self.assertNotIn("evil", log)
        self.assertEqual(self.d.all_files(), [])

    @unittest.skipIf(OPENSSL is None, "openssl not installed")
    def test_openssl_s_client_starttls(self):
        dialog = (b"EHLO " + HELO.encode() + b"\r\n"
                  b"MAIL FROM:<s@x.example>\r\n"
                  b"RCPT TO:<alice@example.org>\r\n"
                  b"DATA\r\n" + MESSAGE.replace(b"\n.", b"\n..")
                  .replace(b"\n", b"\r\n") + b".\r\nQUIT\r\n")
        r = run([OPENSSL, "s_client", "-connect",
                 "127.0.0.1:%d" % self.d.port, "-starttls", "smtp",
                 "-quiet", "-ign_eof", "-brief"], input=dialog)
        out = r.stdout.decode("latin-1")
        err = r.stderr.decode("latin-1")
        m = QUEUED.search(out)
        self.assertIsNotNone(m, "stdout:\n%s\nstderr:\n%s" % (out, err))
        self.assertNotIn("STARTTLS", out)  # not offered in TLS
        self.assertIn("221 2.0.0", out)
        version = re.search(r"Protocol version: (\S+)", err).group(1)
        cipher = re.search(r"Ciphersuite: (\S+)", err).group(1)
        fields, _ = split_trace(self.stored(m.group(1)), 3)
        self.assertIn("(using %s with cipher %s (" % (version, cipher),
                      fields[2])
        self.assertIn(" with ESMTPS id %s;" % m.group(1), fields[2])

    def test_swaks_tls(self):
        swaks = shutil.which("swaks")
        if swaks is None:
            self.skipTest("swaks not installed")
        if b"=== TLS supported" not in run([swaks, "--support"]).stdout:
            self.skipTest("swaks without TLS (Net::SSLeay)")
        r = run([swaks, "--server", "127.0.0.1", "--port", str(self.d.port),
                 "--tls", "--helo", HELO, "--from", "s@x.example",
                 "--to", "alice@example.org", "--header",
                 "Subject: swaks --tls", "--body", "hello from swaks",
                 "--timeout", str(10 * SLOW)])
        out = r.stdout.decode("latin-1")
        self.assertEqual(r.returncode, 0, out + r.stderr.decode())
        self.assertIn("<~  250 2.0.0", out)  # replies read through TLS
        m = QUEUED.search(out)
        self.assertIsNotNone(m, out)
        fields, rest = split_trace(self.stored(m.group(1)), 3)
        self.assertRegex(fields[2], r"\(using TLSv1\.[23] with cipher \S+ "
                         r"\(\d+/\d+ bits\)\) by .* with ESMTPS id ")
        self.assertIn(b"hello from swaks", rest)

    def test_session_resumption(self):
        """Tickets are on: a second connection resumes the first one's
        TLS session (no session cache is kept on the server)."""
        ctx = client_context()
        c = self.client()
        c.hello()
        c.expect_ok("STARTTLS", 220, "2.0.0")
        c.sock = ctx.wrap_socket(c.sock)
        c.hello()  # TLS 1.3 tickets come after the handshake
        c.expect_ok("QUIT", 221)
        session = c.sock.session
        self.assertIsNotNone(session)
        self.assertTrue(session.has_ticket)
        c2 = self.client()
        c2.hello()
        c2.expect_ok("STARTTLS", 220, "2.0.0")
        c2.sock = ctx.wrap_socket(c2.sock, session=session)
        c2.hello()
        self.assertTrue(c2.sock.session_reused)
        c2.expect_ok("QUIT", 221)

    @unittest.skipIf(VALGRIND, "timing means nothing under valgrind")
    def test_no_delayed_ack_stall(self):
        """The first reply through TLS comes at once: without
        TCP_NODELAY it waits behind the session tickets for the client's
        delayed ACK, 40 ms each connection (Nagle)."""
        waits = []
        for _ in range(5):
            c = self.client()
            c.hello()
            self.starttls(c)
            start = time.monotonic()
            c.hello()
            waits.append(time.monotonic() - start)
            c.expect_ok("QUIT", 221)
            c.close()
        # The stall is not chance: every connection would wait its 40 ms.
        # So the fastest of five says it, and a busy machine that slows
        # one or two of them down does not.
        waits.sort()
        self.assertLess(waits[0], 0.030, "EHLO replies took %r s" % waits)

    def test_not_tls_after_starttls(self):
        """Plaintext where the handshake should be: the connection is
        closed, nothing is answered, the daemon goes on."""
        c = self.client()
        c.hello()
        c.expect_ok("STARTTLS", 220, "2.0.0")
        c.send(b"MAIL FROM:<s@x.example>\r\n")
        self.assertTrue(c.closed())
        self.assertEqual(c.buf, b"")
        self.wait_log(r"TLS handshake failed: ")
        with self.smtp() as s:
            s.ehlo()
            s.starttls(context=client_context())


class ImplicitTLS(TLSTestCase):

    implicit = True

    def test_smtp_ssl_delivers(self):
        s = self.smtp_ssl()
        cipher = s.sock.cipher()
        code, _ = s.ehlo()
        self.assertEqual(code, 250)
        self.assertFalse(s.has_extn("starttls"), s.esmtp_features)
        self.assertEqual(s.docmd("STARTTLS")[0], 503)
        msgid = self.send_message(s)
        s.quit()
        self.assertReceivedTLS(msgid, cipher)
        # The plaintext port still offers STARTTLS.
        s = self.smtp()
        s.ehlo()
        self.assertTrue(s.has_extn("starttls"))

    @unittest.skipIf(OPENSSL is None, "openssl not installed")
    def test_openssl_s_client_implicit(self):
        dialog = (b"EHLO " + HELO.encode() + b"\r\n"
                  b"MAIL FROM:<s@x.example>\r\n"
                  b"RCPT TO:<alice@example.org>\r\n"
                  b"DATA\r\nSubject: s_client\r\n\r\nimplicit\r\n.\r\n"
                  b"QUIT\r\n")
        r = run([OPENSSL, "s_client", "-connect",
                 "127.0.0.1:%d" % self.d.port_tls, "-quiet", "-ign_eof",
                 "-brief"], input=dialog)
        out = r.stdout.decode("latin-1")
        self.assertTrue(out.startswith("220 %s ESMTP pollsmtpd\r\n"
                                       % HOSTNAME), out)
        self.assertNotIn("STARTTLS", out)
        m = QUEUED.search(out)
        self.assertIsNotNone(m, out + r.stderr.decode("latin-1"))
        fields, rest = split_trace(self.stored(m.group(1)), 3)
        self.assertIn(" with ESMTPS id %s;" % m.group(1), fields[2])
        self.assertEqual(rest, b"Subject: s_client\n\nimplicit\n")

    def test_tls_1_2_client(self):
        """The default floor is TLS 1.2: a 1.2 client is served, with
        the cipher it got named in Received:."""
        ctx = client_context()
        ctx.maximum_version = ssl.TLSVersion.TLSv1_2
        s = smtplib.SMTP_SSL("127.0.0.1", self.d.port_tls,
                             local_hostname=HELO, timeout=10 * SLOW,
                             context=ctx)
        self.addCleanup(s.close)
        cipher = s.sock.cipher()
        self.assertEqual(cipher[1], "TLSv1.2")
        s.ehlo()
        msgid = self.send_message(s)
        s.quit()
        self.assertReceivedTLS(msgid, cipher)


class MinVersion(TLSTestCase):
    """tls.min_version = "TLSv1.3": the server refuses a TLS 1.2 client."""

    implicit = True
    min_version = "TLSv1.3"

    def test_tls_1_2_refused(self):
        ctx = client_context()
        ctx.maximum_version = ssl.TLSVersion.TLSv1_2
        with self.assertRaises((ssl.SSLError, ConnectionError)):
            smtplib.SMTP_SSL("127.0.0.1", self.d.port_tls,
                             local_hostname=HELO, timeout=10 * SLOW,
                             context=ctx)
        self.wait_log(r"TLS handshake failed: unsupported protocol")
        s = self.smtp_ssl()
        self.assertEqual(s.sock.version(), "TLSv1.3")
        s.ehlo()
        s.quit()


class Stalled(TLSTestCase):
    """Clients that stop in the handshake are cut at command_timeout and
    delay nobody meanwhile."""

    implicit = True
    daemon_opts = {"command_timeout": 2}

    def partial_hello(self):
        """The first half of a real ClientHello."""
        incoming, outgoing = ssl.MemoryBIO(), ssl.MemoryBIO()
        obj = client_context().wrap_bio(incoming, outgoing)
        with self.assertRaises(ssl.SSLWantReadError):
            obj.do_handshake()
        hello = outgoing.read()
        return hello[:len(hello) // 2]

    def test_stalled_handshake_does_not_delay(self):
        stalled = self.client()
        stalled.hello()
        stalled.expect_ok("STARTTLS", 220, "2.0.0")
        stalled.send(self.partial_hello())
        quiet = silent_client(self.d.port_tls)
        self.addCleanup(quiet.close)
        # Meanwhile another client goes through STARTTLS and delivers,
        # in much less than the timeout the stalled ones wait for.
        start = time.monotonic()
        s = self.smtp()
        s.ehlo()
        s.starttls(context=client_context())
        cipher = s.sock.cipher()
        s.ehlo()
        msgid = self.send_message(s)
        s.quit()
        took = time.monotonic() - start
        self.assertLess(took, 1.5 * SLOW)
        self.assertReceivedTLS(msgid, cipher)
        # Both stalled clients are closed once command_timeout is out.
        self.assertTrue(stalled.closed(timeout=6 * SLOW))
        self.assertEqual(stalled.buf, b"")
        quiet.settimeout(6 * SLOW)
        self.assertEqual(quiet.recv(100), b"")
        log = self.wait_log(r"(?s)TLS handshake timed out.*"
                            r"TLS handshake timed out")
        self.assertTrue(log)


def silent_client(port):
    """A client of the implicit TLS port that never says a word."""
    return socket.create_connection(("127.0.0.1", port), timeout=10 * SLOW)


class NoCertificate(unittest.TestCase):
    """Without tls.certificate no STARTTLS is offered or taken."""

    def test_not_offered(self):
        with Daemon() as d:
            with d.client() as c:
                r = c.hello()
                self.assertNotIn(b"STARTTLS", b"\n".join(r.lines))
                c.expect_ok("STARTTLS", 502, "5.5.1")
                c.expect_ok("QUIT", 221)


class Reload(TLSTestCase):

    def served_fingerprint(self):
        with self.smtp() as s:
            s.ehlo()
            s.starttls(context=client_context())
            der = s.sock.getpeercert(binary_form=True)
            s.quit()
        return hashlib.sha256(der).hexdigest()

    def install(self, cert, key):
        """The new pair at the configured paths, as an admin renews it."""
        for src, dst in ((cert, self.cert), (key, self.key)):
            shutil.copyfile(src, dst + ".new")
            give_away(dst + ".new")
            os.rename(dst + ".new", dst)

    def test_sighup_reloads(self):
        first = fingerprint_of_file(self.cert)
        self.assertEqual(self.served_fingerprint(), first)
        new_cert, new_key = make_pair(self.certs, "new", HOSTNAME)
        second = fingerprint_of_file(new_cert)
        self.assertNotEqual(first, second)

        # A session in TLS before the reload goes on.
        old = self.smtp()
        old.ehlo()
        old.starttls(context=client_context())
        self.install(new_cert, new_key)
        self.d.signal(signal.SIGHUP)
        colons = ":".join(second[i:i + 2] for i in range(0, 64, 2)).upper()
        self.wait_log(r"TLS certificate reloaded: subject .*CN ?= ?%s, "
                      r"SHA256 fingerprint %s" % (re.escape(HOSTNAME), colons))
        self.assertEqual(self.served_fingerprint(), second)
        old.ehlo()
        self.send_message(old)
        old.quit()

        # A broken pair (another key): the second one stays, with a warning.
        other_cert, other_key = make_pair(self.certs, "other", HOSTNAME)
        self.install(other_cert, new_key)
        self.d.signal(signal.SIGHUP)
        self.wait_log(r"WARN.*TLS reload failed, the old certificate stays "
                      r"in use: tls\.key: .*does not belong")
        self.assertEqual(self.served_fingerprint(), second)
        self.assertTrue(self.d.alive())


class CheckConfig(unittest.TestCase):
    """pollsmtpd -t loads the pair: problems at the key's FILE:LINE."""

    def setUp(self):
        if OPENSSL is None:
            self.skipTest("openssl not installed")
        self.dir = tempfile.mkdtemp(prefix="pollsmtpd-tls-t-")
        self.addCleanup(shutil.rmtree, self.dir, True)
        self.cert, self.key = make_pair(self.dir, "a", "a.test.example")
        self.cert2, self.key2 = make_pair(self.dir, "b", "b.test.example")

    def check(self, cert, key, extra=""):
        path = os.path.join(self.dir, "t.conf")
        # The user, group and Maildir root that -t checks too; on the
        # lines that are there anyway, so the lines named stay put.
        user, group = daemon_user()
        text = ('server = {\n  listen = [ "127.0.0.1:2525" ];\n%s'
                '  user = "%s"; group = "%s"; };\n'
                'log = { file = ""; };\n'
                'tls = {\n  certificate = "%s";\n  key = "%s";\n};\n'
                'application = { maildir = { path = "%s"; }; };\n'
                % (extra, user, group, cert, key,
                   os.path.join(self.dir, "root")))
        with open(path, "w") as f:
            f.write(text)
        r = run([daemon_path(), "-t", "-c", path])
        return path, r.returncode, r.stderr.decode()

    def test_good_pair(self):
        path, status, err = self.check(self.cert, self.key)
        if "built without OpenSSL" in err:
            self.skipTest("pollsmtpd built without OpenSSL")
        self.assertEqual((status, err), (0, ""))

    def test_missing_key(self):
        missing = os.path.join(self.dir, "none.key")
        path, status, err = self.check(self.cert, missing)
        if "built without OpenSSL" in err:
            self.skipTest("pollsmtpd built without OpenSSL")
        self.assertEqual(status, 78)
        self.assertEqual(err, "%s:7: tls.key: %s: No such file or "
                         "directory\n" % (path, missing))

    def test_unreadable_certificate(self):
        path, status, err = self.check(self.key, self.key)
        if "built without OpenSSL" in err:
            self.skipTest("pollsmtpd built without OpenSSL")
        self.assertEqual(status, 78)
        self.assertRegex(err, r"^%s:6: tls\.certificate: %s: cannot load "
                         r"the certificate: .+\n$" % (
                             re.escape(path), re.escape(self.key)))

    def test_pair_does_not_match(self):
        path, status, err = self.check(self.cert, self.key2)
        if "built without OpenSSL" in err:
            self.skipTest("pollsmtpd built without OpenSSL")
        self.assertEqual(status, 78)
        self.assertEqual(err, "%s:7: tls.key: %s: the private key does not "
                         "belong to the certificate %s\n" % (
                             path, self.key2, self.cert))

    def test_daemon_refuses_to_start(self):
        """The daemon loads the pair before anything else: a bad one is
        exit 78 with the same message, and nothing is made."""
        path, status, err = self.check(self.cert, self.key2)
        if "built without OpenSSL" in err:
            self.skipTest("pollsmtpd built without OpenSSL")
        r = run([daemon_path(), "-f", "-c", path])
        self.assertEqual(r.returncode, 78)
        self.assertEqual(r.stderr.decode(), err)

    def test_listen_tls_without_certificate(self):
        path, status, err = self.check(
            "", "", '  listen_tls = [ "127.0.0.1:4465" ];\n')
        self.assertEqual(status, 78)
        if "built without OpenSSL" in err:
            self.assertEqual(err, "%s:3: server.listen_tls: this pollsmtpd "
                             "was built without OpenSSL (no TLS)\n" % path)
        else:
            self.assertEqual(err, "%s:3: server.listen_tls: needs "
                             "tls.certificate and tls.key\n" % path)


class IdleMemory(TLSTestCase):
    """What an idle session in TLS costs the daemon (after STARTTLS and
    EHLO, waiting for its next command): RSS growth over IDLE_SESSIONS
    of them, against the same number of plaintext ones, each in a
    fresh daemon. Printed for doc/performance.md; the TLS figure must be
    at most 48 KiB a session (not checked under valgrind or the
    sanitizers, whose allocators change every figure)."""

    daemon_opts = {"debug": False}

    def open_sessions(self, tls, n):
        clients = []
        for _ in range(n):
            c = self.d.client()
            clients.append(c)
            self.addCleanup(c.close)
            c.hello()
            if tls:
                self.starttls(c)
                c.hello()
        return clients

    def growth(self, tls):
        pid = self.d.proc.pid
        # Some sessions first, so that lazy set-up (OpenSSL's tables,
        # the loop's arrays, malloc's arenas) is not counted.
        self.open_sessions(tls, 10)
        before = rss_bytes(pid)
        self.open_sessions(tls, IDLE_SESSIONS)
        return (rss_bytes(pid) - before) / IDLE_SESSIONS

    def test_idle_tls_session_memory(self):
        tls = self.growth(tls=True)
        self.d.stop()
        self.d = TLSDaemon(self.cert, self.key, debug=False).start()
        plain = self.growth(tls=False)
        print("\nidle sessions: %d; RSS per session: TLS %.1f KiB, "
              "plaintext %.1f KiB, TLS costs %.1f KiB more"
              % (IDLE_SESSIONS, tls / 1024, plain / 1024,
                 (tls - plain) / 1024), flush=True)
        if not (VALGRIND or SANITIZERS):
            self.assertLessEqual(tls, IDLE_TLS_BUDGET)


if __name__ == "__main__":
    unittest.main()
