"""test_delivery_tls - STARTTLS on the delivery agent's side (delivery.tls).

The agent under test delivers by MX (dnsmasq on 127.0.0.1, the set-up of
test_delivery.py, whose DeliveryTest this reuses) to a destination on
127.0.0.3: a second real pollsmtpd, with a certificate made here by
openssl req (as test_tls.py does) or without one (no STARTTLS offered), or
a small server written here that offers STARTTLS and then breaks the
handshake (garbage instead of a ServerHello, or a close).

What is asserted is what an administrator sees: the destination's
Received: line ("with ESMTPS" and the cipher, or "with ESMTP"), the
destination's log (whether STARTTLS was ever said), the agent's log
record of the TLS session (protocol, cipher, the certificate's check),
the letter delivered or still queued, and maildir-inspect's last_error.
"""

import json
import os
import re
import shutil
import socket
import subprocess
import tempfile
import threading
import unittest

import harness
from harness import Daemon, SLOW
from test_delivery import CURRENT, DeliveryTest, wait_until
from test_tls import OPENSSL, TLSDaemon, give_away, make_pair

DEST_HOST = "mx.remote.test"
DEST_ADDR = "127.0.0.3"
DOMAIN = "remote.test"
RECEIVED = re.compile(r"^Received: from (\S+) \(\[[^]]*\]\)(?: \(using "
                      r"(.*?\(\d+/\d+ bits\))\))? by %s \(pollsmtpd\) with "
                      r"(\w+) id " % re.escape(DEST_HOST), re.M)
AGENT_TLS = re.compile(r"%s\[%s\]:\d+: TLS established: (.*? bits\)),"
                       r"( session resumed,)? certificate (.*)"
                       % (re.escape(DEST_HOST), re.escape(DEST_ADDR)))


class BrokenTlsServer:
    """An SMTP server on DEST_ADDR that offers STARTTLS and, when it is
    asked for, answers 220 and then breaks the handshake: mode "garbage"
    sends bytes that are no TLS record, mode "close" closes at once. A
    client that does not say STARTTLS gets an ordinary dialog: each
    letter is kept in self.letters as (MAIL line, [RCPT], data)."""

    def __init__(self, mode, port):
        self.mode = mode
        self.letters = []
        self.commands = []       # every command line of every connection
        self.connections = 0
        self.lock = threading.Lock()
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind((DEST_ADDR, port))
        self.sock.listen(16)
        self.sock.settimeout(0.2)
        self.stopping = False
        self.thread = threading.Thread(target=self.run, daemon=True)
        self.thread.start()

    def run(self):
        while not self.stopping:
            try:
                conn, _ = self.sock.accept()
            except socket.timeout:
                continue
            except OSError:
                return
            with self.lock:
                self.connections += 1
            threading.Thread(target=self.serve, args=(conn,),
                             daemon=True).start()

    def stop(self):
        self.stopping = True
        self.thread.join(5)
        self.sock.close()

    def serve(self, conn):
        conn.settimeout(30 * SLOW)
        f = conn.makefile("rb")

        def send(line):
            conn.sendall(line.encode() + b"\r\n")

        try:
            send("220 %s ESMTP broken TLS" % DEST_HOST)
            mail, rcpts = None, []
            while True:
                line = f.readline()
                if not line:
                    return
                cmd = line.decode("latin-1").rstrip("\r\n")
                with self.lock:
                    self.commands.append(cmd)
                verb = cmd[:8].upper()
                if verb.startswith("EHLO"):
                    send("250-%s" % DEST_HOST)
                    send("250-PIPELINING")
                    send("250 STARTTLS")
                elif verb == "STARTTLS":
                    send("220 2.0.0 Ready to start TLS")
                    if self.mode == "garbage":
                        conn.sendall(b"this is no TLS record, sorry\r\n"
                                     * 4)
                    return
                elif verb.startswith("MAIL"):
                    mail, rcpts = cmd, []
                    send("250 2.1.0 Ok")
                elif verb.startswith("RCPT"):
                    rcpts.append(cmd[cmd.index("<") + 1:cmd.rindex(">")])
                    send("250 2.1.5 Ok")
                elif verb.startswith("DATA"):
                    send("354 go ahead")
                    data = b""
                    while True:
                        l = f.readline()
                        if not l:
                            return
                        if l == b".\r\n":
                            break
                        data += l
                    with self.lock:
                        self.letters.append((mail, list(rcpts), data))
                    send("250 2.0.0 Ok: queued")
                elif verb.startswith("QUIT"):
                    send("221 2.0.0 bye")
                    return
                else:
                    send("502 5.5.2 what")
        except OSError:
            return
        finally:
            f.close()
            conn.close()


class DeliveryTlsTest(DeliveryTest):
    """dnsmasq says remote.test's MX is mx.remote.test, 127.0.0.3; the
    destination listens there; the agent's delivery.port is its port."""

    def setUp(self):
        super().setUp()
        if OPENSSL is None:
            self.skipTest("openssl not installed")
        self.dns.mx(DOMAIN, DEST_HOST, 10)
        self.dns.a(DEST_HOST, DEST_ADDR)
        self.dest = None

    def destination(self, certificate=True):
        """A second pollsmtpd for remote.test on 127.0.0.3 (its agent
        off), with a certificate for its name or none."""
        opts = dict(hostname=DEST_HOST, address=DEST_ADDR,
                    domains=[DOMAIN], users=["bob"], postmaster="bob")
        if certificate:
            certs = tempfile.mkdtemp(prefix="pollsmtpd-dtls-")
            os.chmod(certs, 0o755)
            self.addCleanup(shutil.rmtree, certs, True)
            cert, key = make_pair(certs, "dest", DEST_HOST)
            give_away(cert)
            give_away(key)
            self.dest = TLSDaemon(cert, key, **opts)
        else:
            self.dest = Daemon(**opts)
        self.dest.start()
        self.addCleanup(self._stop_dest)
        if certificate and "built without OpenSSL" in self.dest.log():
            self.skipTest("pollsmtpd built without OpenSSL")
        return self.dest

    def _stop(self):
        """As DeliveryTest's, and the agent's report too: the agent is a
        forked child, whose errors (valgrind's, ASan's, UBSan's) go to
        the daemon's log but do not change the daemon's exit status."""
        if self.daemon is None or self.daemon.proc is None:
            return
        self.daemon.stop(remove=False)
        log = self.daemon.log()
        shutil.rmtree(self.daemon.dir, ignore_errors=True)
        # (valgrind's own notes about its gdbserver pipes are none)
        report = [l for l in log.splitlines()
                  if (harness.VALGRIND and re.match(r"==\d+==", l) and
                      "/vgdb-pipe" not in l) or
                  re.search(r"ERROR: AddressSanitizer|runtime error:", l)]
        self.assertEqual(report, [], "valgrind or a sanitizer in the "
                         "delivery agent")

    def _stop_dest(self):
        if self.dest is not None and self.dest.proc is not None:
            self.dest.stop()

    def start_agent(self, tls, port, needs_tls=True, **delivery):
        """The daemon under test with delivery.tls = tls; a test of its
        STARTTLS is skipped when it was built without OpenSSL (its agent
        says so when it starts)."""
        d = self.start(port=port, tls=harness.conf_string(tls), **delivery)
        CURRENT["daemon"] = d
        self.assert_logged(r"delivery agent serving")
        if needs_tls and "built without OpenSSL" in d.log():
            self.skipTest("pollsmtpd built without OpenSSL")
        return d

    def arrived(self):
        """The letters in bob's Maildir at the destination."""
        return [self.dest.read("bob", n) for n in self.dest.files("bob")]

    def received(self, raw):
        """(protocol "with ...", TLS text or None) of the destination's
        Received: line (its own, the first one)."""
        m = RECEIVED.search(raw.decode("utf-8", "replace"))
        self.assertIsNotNone(m, "no Received: line of %s in:\n%s" % (
            DEST_HOST, raw.decode("utf-8", "replace")[:800]))
        return m.group(3), m.group(2)

    def inspect_list(self):
        inspect = os.environ.get("MAILDIR_INSPECT") or os.path.join(
            harness.HERE, "..", "..", "src", "maildir-inspect",
            "maildir-inspect")
        out = subprocess.run([inspect, "-d", self.daemon.root, "--json",
                              "list"], capture_output=True, check=True)
        return json.loads(out.stdout)["letters"]

    def wait_deferred(self, qid):
        """The letter qid, queued for remote.test with an attempt made
        and a last_error, as maildir-inspect shows it, and back in its
        domain: the agent writes the state before it gives the claim
        back, so a letter with its last_error may still be claimed."""
        def letter():
            for l in self.inspect_list():
                if l["id"] == qid and l["attempts"] >= 1 and \
                        l["last_error"] and not l["claimed"]:
                    return l
            return None
        return wait_until(letter, 15, "letter %s deferred" % qid)


class TestMay(DeliveryTlsTest):

    def test_may_encrypts_and_logs_the_cipher(self):
        """"may" and a destination with a certificate: STARTTLS, the
        letter arrives "with ESMTPS" and the cipher the destination
        names is the one the agent's log names; the self-signed
        certificate does not verify, which is logged and does not
        matter (opportunistic)."""
        dest = self.destination(certificate=True)
        self.start_agent("may", dest.port)
        qid = self.send(["bob@%s" % DOMAIN])
        wait_until(self.arrived, 15, "the letter at the destination")
        self.wait_empty(DOMAIN)
        proto, tls = self.received(self.arrived()[0])
        self.assertEqual(proto, "ESMTPS")
        self.assertIsNotNone(tls)
        # The destination heard STARTTLS and logged the same session.
        self.assertRegex(dest.log(), r"> STARTTLS")
        self.assertRegex(dest.log(), r"INFO S\d+ STARTTLS")
        self.assertIn("TLS established: %s" % tls, dest.log())
        self.assert_logged(AGENT_TLS.pattern)
        m = AGENT_TLS.search(self.daemon.log())
        self.assertEqual(m.group(1), tls)
        self.assertRegex(m.group(1), r"^TLSv1\.[23] with cipher \S+ ")
        self.assertTrue(m.group(3).startswith("not verified: "),
                        m.group(0))
        self.assertIn("self-signed", m.group(3))
        self.assert_logged(r"%s to=<bob@%s>, relay=%s\[%s\]:%d, .*"
                           r"status=sent" % (qid, DOMAIN, DEST_HOST,
                                             DEST_ADDR, dest.port))

    def test_may_resumes_the_session(self):
        """A second session to the same destination resumes the TLS
        session of the first (the destination's session ticket)."""
        dest = self.destination(certificate=True)
        self.start_agent("may", dest.port)
        self.send(["bob@%s" % DOMAIN])
        wait_until(lambda: len(self.arrived()) == 1, 15, "letter 1")
        self.wait_empty(DOMAIN)
        self.send(["bob@%s" % DOMAIN])
        wait_until(lambda: len(self.arrived()) == 2, 15, "letter 2")
        wait_until(lambda: len(AGENT_TLS.findall(self.daemon.log())) >= 2,
                   10, "two TLS sessions logged")
        first, second = AGENT_TLS.findall(self.daemon.log())[:2]
        self.assertEqual(first[1], "")
        self.assertEqual(second[1], " session resumed,")
        for raw in self.arrived():
            self.assertEqual(self.received(raw)[0], "ESMTPS")

    def test_may_without_certificate_is_plaintext(self):
        """"may" and a destination that offers no STARTTLS (no
        certificate): the letter arrives in plaintext, "with ESMTP"."""
        dest = self.destination(certificate=False)
        self.start_agent("may", dest.port, needs_tls=False)
        self.send(["bob@%s" % DOMAIN])
        wait_until(self.arrived, 15, "the letter at the destination")
        self.wait_empty(DOMAIN)
        proto, tls = self.received(self.arrived()[0])
        self.assertEqual(proto, "ESMTP")
        self.assertIsNone(tls)
        self.assertNotIn("TLS established", self.daemon.log())

    def broken(self, mode):
        port = harness.free_port(DEST_ADDR)
        server = BrokenTlsServer(mode, port)
        self.addCleanup(server.stop)
        return server, port

    def check_fallback(self, mode):
        server, port = self.broken(mode)
        self.start_agent("may", port)
        qid = self.send(["bob@%s" % DOMAIN])
        wait_until(lambda: server.letters, 15, "the letter in plaintext")
        self.wait_empty(DOMAIN)
        mail, rcpts, data = server.letters[0]
        self.assertEqual(rcpts, ["bob@%s" % DOMAIN])
        self.assertIn(("id %s" % qid).encode(), data)
        # One connection tried TLS, the next one (same address) did not.
        self.assertEqual(server.connections, 2)
        self.assertEqual(server.commands.count("STARTTLS"), 1)
        self.assert_logged(r"%s\[%s\]:%d: TLS handshake failed: .*; trying "
                           r"again without TLS" % (DEST_HOST, DEST_ADDR,
                                                   port))
        self.assert_logged(r"%s to=<bob@%s>, relay=%s\[%s\]:%d, .*"
                           r"status=sent" % (qid, DOMAIN, DEST_HOST,
                                             DEST_ADDR, port))

    def test_may_falls_back_after_garbage(self):
        """"may", and the server sends garbage instead of a handshake:
        the same address again at once, in plaintext; it arrives."""
        self.check_fallback("garbage")

    def test_may_falls_back_after_close(self):
        """"may", and the server closes after its 220 to STARTTLS."""
        self.check_fallback("close")


class TestEncrypt(DeliveryTlsTest):

    def test_encrypt_without_starttls_stays_queued(self):
        """"encrypt" and a destination that offers no STARTTLS: nothing
        is sent, the letter stays queued with a 4.7.5 last_error."""
        dest = self.destination(certificate=False)
        # No second attempt (and claim) while the queue is looked at.
        d = self.start_agent("encrypt", dest.port, needs_tls=False,
                             retry_first=60, retry_max=60)
        qid = self.send(["bob@%s" % DOMAIN])
        letter = self.wait_deferred(qid)
        self.assertIn("4.7.5", letter["last_error"])
        # Built without OpenSSL the agent cannot even try.
        self.assertIn("TLS not available" if "built without OpenSSL" in
                      d.log() else "STARTTLS is not offered",
                      letter["last_error"])
        self.assertEqual(len(self.queued(DOMAIN)), 1)
        self.assertEqual(self.arrived(), [])
        # The destination never saw a transaction begin.
        self.assertNotRegex(dest.log(), r"(?i)MAIL FROM")

    def test_encrypt_and_failed_handshake_stays_queued(self):
        """"encrypt" and a handshake that fails: no plaintext retry;
        the letter is deferred with 4.7.5 and nothing arrives."""
        port = harness.free_port(DEST_ADDR)
        server = BrokenTlsServer("garbage", port)
        self.addCleanup(server.stop)
        self.start_agent("encrypt", port, retry_first=60, retry_max=60)
        qid = self.send(["bob@%s" % DOMAIN])
        letter = self.wait_deferred(qid)
        self.assertIn("4.7.5", letter["last_error"])
        self.assertIn("handshake failure", letter["last_error"])
        self.assertEqual(len(self.queued(DOMAIN)), 1)
        self.assertEqual(server.letters, [])
        self.assertFalse([c for c in server.commands
                          if c.upper().startswith("MAIL")])
        self.assertNotIn("trying again without TLS", self.daemon.log())

    def test_encrypt_with_certificate_delivers(self):
        """"encrypt" and a destination with a certificate: delivered
        through TLS."""
        dest = self.destination(certificate=True)
        self.start_agent("encrypt", dest.port)
        self.send(["bob@%s" % DOMAIN])
        wait_until(self.arrived, 15, "the letter at the destination")
        self.wait_empty(DOMAIN)
        self.assertEqual(self.received(self.arrived()[0])[0], "ESMTPS")


class TestNone(DeliveryTlsTest):

    def test_none_never_says_starttls(self):
        """"none" and a destination that offers STARTTLS: plaintext,
        and the destination never heard STARTTLS."""
        dest = self.destination(certificate=True)
        self.start_agent("none", dest.port)
        self.send(["bob@%s" % DOMAIN])
        wait_until(self.arrived, 15, "the letter at the destination")
        self.wait_empty(DOMAIN)
        proto, tls = self.received(self.arrived()[0])
        self.assertEqual(proto, "ESMTP")
        self.assertIsNone(tls)
        # It offered STARTTLS (its EHLO reply, logged at DEBUG)...
        self.assertIn("250-STARTTLS", dest.log())
        # ...and never heard the command, nor made a TLS session.
        self.assertNotRegex(dest.log(), r"> STARTTLS|INFO S\d+ STARTTLS")
        self.assertNotIn("TLS established", dest.log())
        self.assertNotIn("TLS established", self.daemon.log())


if __name__ == "__main__":
    unittest.main()
