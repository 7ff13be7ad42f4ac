"""test_delivery - the delivery agent against a real DNS server and SMTP sinks.

Everything stays on loopback: dnsmasq (Debian's dnsmasq-base) runs in the
foreground on 127.0.0.1 and a free port with a private configuration and
--no-resolv, serving the MX/A/AAAA records each test writes (including
NXDOMAIN, a null MX and a name whose server answers SERVFAIL); the daemon
under test always has delivery.resolvers set to it, and delivery.port set
to the sinks' port, which listen on 127.0.0.x. The sinks are small SMTP
servers written here that answer 4xx/5xx on demand, drop the connection,
and advertise PIPELINING/SIZE/8BITMIME or not.

Durations are 1-2 s settings (retry_first, max_lifetime) and every wait
is a wait for a condition with a deadline.
"""

import email
import email.policy
import os
import re
import shutil
import signal
import socket
import socketserver
import subprocess
import tempfile
import threading
import time
import unittest

import harness
from harness import Daemon, SLOW

DNSMASQ = shutil.which("dnsmasq") or "/usr/sbin/dnsmasq"


CURRENT = {}     # the running daemon, whose log a timeout shows


def wait_until(predicate, timeout=10.0, what="condition"):
    deadline = time.monotonic() + timeout * SLOW
    while True:
        v = predicate()
        if v:
            return v
        if time.monotonic() > deadline:
            d = CURRENT.get("daemon")
            raise AssertionError("timed out waiting for %s; log:\n%s" % (
                what, d.log_tail(60) if d is not None else ""))
        time.sleep(0.05)


# -- a DNS server on loopback ---------------------------------------------

class ServfailServer(threading.Thread):
    """A UDP name server that answers every query SERVFAIL (dnsmasq
    forwards one zone to it)."""

    def __init__(self):
        super().__init__(daemon=True)
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.settimeout(0.2)
        self.port = self.sock.getsockname()[1]
        self.stopping = False

    def run(self):
        while not self.stopping:
            try:
                data, peer = self.sock.recvfrom(4096)
            except socket.timeout:
                continue
            except OSError:
                return
            if len(data) < 12:
                continue
            # QR=1, RD and RA, RCODE=2; the question is echoed.
            flags = 0x8000 | (data[2] << 8 & 0x0100) | 0x0080 | 2
            reply = data[:2] + flags.to_bytes(2, "big") + data[4:6] + \
                b"\0\0\0\0\0\0" + data[12:]
            try:
                self.sock.sendto(reply, peer)
            except OSError:
                pass

    def stop(self):
        self.stopping = True
        self.join(2)
        self.sock.close()


class Dns:
    """dnsmasq on 127.0.0.1:PORT serving the zone test. only."""

    def __init__(self):
        self.dir = tempfile.mkdtemp(prefix="pollsmtpd-dns-")
        self.lines = []
        self.proc = None
        self.port = None
        self.servfail = ServfailServer()
        self.servfail.start()

    def mx(self, domain, host, pref):
        self.lines.append("mx-host=%s,%s,%d" % (domain, host, pref))

    def a(self, name, *addrs):
        self.lines.append("host-record=%s,%s" % (name, ",".join(addrs)))

    def null_mx(self, domain):
        self.lines.append("mx-host=%s,.,0" % domain)

    def servfail_zone(self, zone):
        self.lines.append("server=/%s/127.0.0.1#%d" % (zone,
                                                       self.servfail.port))

    @property
    def log_path(self):
        return os.path.join(self.dir, "queries.log")

    def queries(self):
        try:
            with open(self.log_path) as f:
                return f.read()
        except OSError:
            return ""

    def start(self):
        if not os.access(DNSMASQ, os.X_OK):
            raise unittest.SkipTest("dnsmasq not installed "
                                    "(apt-get install dnsmasq-base)")
        last = ""
        for _ in range(3):
            self.port = harness.free_port()
            conf = os.path.join(self.dir, "dnsmasq.conf")
            with open(conf, "w") as f:
                f.write("\n".join([
                    "no-resolv", "no-hosts", "no-poll", "bind-interfaces",
                    "listen-address=127.0.0.1", "port=%d" % self.port,
                    "local=/test/", "log-queries",
                    "log-facility=%s" % self.log_path,
                    "cache-size=0",
                ] + self.lines) + "\n")
            cmd = [DNSMASQ, "--keep-in-foreground", "--conf-file=" + conf,
                   "--pid-file="]
            if os.getuid() == 0:
                cmd.append("--user=root")
            with open(os.path.join(self.dir, "stderr"), "wb") as err:
                self.proc = subprocess.Popen(
                    cmd, stdin=subprocess.DEVNULL,
                    stdout=subprocess.DEVNULL, stderr=err)
            try:
                wait_until(lambda: "started" in self.queries() or
                           self.proc.poll() is not None, 10,
                           "dnsmasq to start")
            except AssertionError:
                pass
            if self.proc.poll() is None:
                return self
            with open(os.path.join(self.dir, "stderr")) as f:
                last = f.read()
        raise AssertionError("dnsmasq did not start: %s" % last)

    def stop(self):
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            self.proc.wait(10)
        self.servfail.stop()
        shutil.rmtree(self.dir, ignore_errors=True)


# -- a scriptable SMTP sink ---------------------------------------------

class Sink:
    """An SMTP server on HOST:PORT. Each letter received is appended to
    self.letters as (mail_from_line, [rcpt], data bytes). Behaviour:
      ehlo:   the EHLO keywords offered (None: EHLO refused with 502)
      rcpt:   function(address) -> reply line for RCPT (default 250)
      data:   reply line after the final dot (default 250)
      greeting: the greeting line
      drop_at_data: close the connection instead of answering the dot
    BDAT (RFC 3030) is taken whatever ehlo says: each chunk is answered
    250, the LAST one with data; the letter's bytes are the chunks'.
      name:   the name in the greeting and EHLO reply
    """

    def __init__(self, host, port, name="sink.test"):
        self.host = host
        self.port = port
        self.name = name
        self.ehlo = ["PIPELINING", "SIZE 10000000", "8BITMIME"]
        self.rcpt = lambda addr: "250 2.1.5 Ok"
        self.data = "250 2.0.0 Ok: queued"
        self.greeting = None
        self.drop_at_data = False
        self.letters = []
        self.transcripts = []
        self.connections = 0
        self.lock = threading.Lock()
        sink = self

        class Handler(socketserver.StreamRequestHandler):
            def handle(self):
                sink.serve(self)

        class Server(socketserver.ThreadingTCPServer):
            allow_reuse_address = True
            daemon_threads = True

        self.server = Server((host, port), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever,
                                       daemon=True)
        self.thread.start()

    def stop(self):
        self.server.shutdown()
        self.server.server_close()

    def serve(self, h):
        with self.lock:
            self.connections += 1
        log = []
        h.request.settimeout(30)

        def send(line):
            log.append("S: " + line)
            h.wfile.write(line.encode() + b"\r\n")

        try:
            send(self.greeting or "220 %s ESMTP sink" % self.name)
            if self.greeting and not self.greeting.startswith("220"):
                h.rfile.readline()
                send("221 bye")
                return
            mail, rcpts, chunks = None, [], []
            while True:
                line = h.rfile.readline()
                if not line:
                    return
                cmd = line.decode("latin-1").rstrip("\r\n")
                log.append("C: " + cmd)
                verb = cmd[:4].upper()
                if verb == "EHLO":
                    if self.ehlo is None:
                        send("502 5.5.1 no EHLO here")
                        continue
                    lines = [self.name] + self.ehlo
                    for i, kw in enumerate(lines):
                        send("250%s%s" % (" " if i == len(lines) - 1
                                          else "-", kw))
                elif verb == "HELO":
                    send("250 %s" % self.name)
                elif verb == "BDAT":
                    words = cmd.split()
                    n = int(words[1])
                    chunks.append(h.rfile.read(n))
                    if not rcpts:
                        send("554 5.5.1 no valid recipients")
                    elif len(words) > 2 and words[2].upper() == "LAST":
                        with self.lock:
                            self.letters.append((mail, list(rcpts),
                                                 b"".join(chunks)))
                        chunks = []
                        send(self.data)
                    else:
                        send("250 2.0.0 %d octets" % n)
                elif verb == "MAIL":
                    mail, rcpts, chunks = cmd, [], []
                    send("250 2.1.0 Ok")
                elif verb == "RCPT":
                    addr = cmd[cmd.index("<") + 1:cmd.rindex(">")]
                    reply = self.rcpt(addr)
                    if reply.startswith("2"):
                        rcpts.append(addr)
                    send(reply)
                elif verb == "DATA":
                    if not rcpts:
                        send("554 5.5.1 no valid recipients")
                        continue
                    send("354 go ahead")
                    data = b""
                    while True:
                        l = h.rfile.readline()
                        if not l:
                            return
                        if l == b".\r\n":
                            break
                        data += l
                    if self.drop_at_data:
                        return
                    with self.lock:
                        self.letters.append((mail, list(rcpts), data))
                    send(self.data)
                elif verb == "RSET":
                    mail, rcpts = None, []
                    send("250 2.0.0 Ok")
                elif verb == "QUIT":
                    send("221 2.0.0 bye")
                    return
                else:
                    send("502 5.5.2 what")
        except OSError:
            return
        finally:
            with self.lock:
                self.transcripts.append(log)


def bounce_parts(text):
    """The parts of an RFC 3464 bounce, parsed with Python's email."""
    msg = email.message_from_bytes(text, policy=email.policy.compat32)
    return msg


class DeliveryTest(unittest.TestCase):
    """Shared set-up: dnsmasq, sinks on 127.0.0.2 and 127.0.0.3, and a
    daemon whose agent uses them."""

    SINK_HOSTS = ("127.0.0.2", "127.0.0.3")

    def setUp(self):
        self.dns = Dns()
        self.addCleanup(self.dns.stop)
        self.sink_port = harness.free_port("127.0.0.2")
        self.sinks = {}
        self.daemon = None

    def add_sink(self, host, name=None):
        s = Sink(host, self.sink_port, name or "sink-%s.test" % host)
        self.sinks[host] = s
        self.addCleanup(s.stop)
        return s

    def start(self, **delivery):
        self.dns.start()
        d = dict(
            resolvers=harness.conf_list(["127.0.0.1:%d" % self.dns.port]),
            port=str(self.sink_port),
            retry_first="1",
            retry_max="2",
            max_lifetime="3600",
            claim_timeout="3600",
        )
        d.update({k: str(v) for k, v in delivery.items()})
        self.daemon = Daemon(delivery=d, users=["alice", "bob"],
                             domains=["example.org"])
        self.daemon.start()
        CURRENT["daemon"] = self.daemon
        self.addCleanup(self._stop)
        return self.daemon

    def _stop(self):
        if self.daemon is not None and self.daemon.proc is not None:
            self.daemon.stop()

    def send(self, rcpts, sender="alice@example.org", body=None,
             headers=""):
        c = self.daemon.client()
        c.expect_ok("EHLO client.test", 250)
        c.expect_ok("MAIL FROM:<%s>" % sender, 250)
        for r in rcpts:
            c.expect_ok("RCPT TO:<%s>" % r, 250)
        c.expect_ok("DATA", 354)
        text = headers + "Subject: test\r\n\r\n" + (body or "hello\r\n")
        reply = c.expect_ok(text + ".", 250)
        c.expect_ok("QUIT", 221)
        c.close()
        return re.search(r"queued as (\w+)", reply.text).group(1)

    def queued(self, domain):
        return self.daemon.queue_files(domain)

    def errors(self, domain):
        d = os.path.join(self.daemon.queue_dir(domain), "error")
        if not os.path.isdir(d):
            return []
        return sorted(n for n in os.listdir(d)
                      if os.path.isfile(os.path.join(d, n)))

    def claimed(self, domain):
        d = os.path.join(self.daemon.queue_dir(domain), ".claim")
        return sorted(os.listdir(d)) if os.path.isdir(d) else []

    def state(self, domain, name):
        p = os.path.join(self.daemon.queue_dir(domain), ".state", name)
        try:
            with open(p) as f:
                return dict(l.split(" ", 1) for l in f.read().splitlines())
        except OSError:
            return None

    def deferred(self, domain):
        """The name of a queued letter of domain that has a state."""
        for n in self.queued(domain):
            if self.state(domain, n):
                return n
        return None

    def bounces(self, user="alice"):
        return [self.daemon.read(user, n) for n in self.daemon.files(user)]

    def wait_empty(self, domain, timeout=15):
        wait_until(lambda: not self.queued(domain) and
                   not self.claimed(domain), timeout,
                   "the queue of %s to empty" % domain)

    def log_has(self, pattern):
        return re.search(pattern, self.daemon.log()) is not None

    def assert_logged(self, pattern, timeout=10):
        """The logger writes records on its own time: one sent before a
        file the test saw may reach the log after it."""
        wait_until(lambda: self.log_has(pattern), timeout,
                   "a log record matching %r" % pattern)


class TestDelivered(DeliveryTest):

    def test_delivered_and_removed(self):
        """MX order: the letter goes to the preferred MX, is removed, and
        the log says sent with the relay; the query went to our server."""
        sink = self.add_sink("127.0.0.2")
        other = self.add_sink("127.0.0.3")
        self.dns.mx("remote.test", "mx1.remote.test", 10)
        self.dns.mx("remote.test", "mx2.remote.test", 20)
        self.dns.a("mx1.remote.test", "127.0.0.2")
        self.dns.a("mx2.remote.test", "127.0.0.3")
        self.start()
        qid = self.send(["bob@remote.test", "carol@remote.test"])
        wait_until(lambda: sink.letters, 10, "the letter at the sink")
        self.wait_empty("remote.test")
        mail, rcpts, data = sink.letters[0]
        self.assertEqual(mail, "MAIL FROM:<alice@example.org> SIZE=%d"
                         % (len(data)) if False else mail)
        self.assertTrue(mail.startswith("MAIL FROM:<alice@example.org>"))
        self.assertEqual(rcpts, ["bob@remote.test", "carol@remote.test"])
        self.assertIn(b"Subject: test\r\n\r\nhello\r\n", data)
        self.assertIn(("id %s" % qid).encode(), data)
        self.assertEqual(other.letters, [])
        self.assertEqual(self.state("remote.test", "x"), None)
        self.assert_logged((
            r"%s to=<bob@remote.test>, relay=mx1.remote.test\[127.0.0.2\]"
            r":%d, delay=\d+s, dsn=2.0.0, status=sent \(250 2.0.0 Ok"
            % (qid, self.sink_port)))
        # The agent asked the configured resolver (and it answered).
        self.assertIn("query[MX] remote.test from 127.0.0.1",
                      self.dns.queries())
        self.assertEqual(os.listdir(os.path.join(
            self.daemon.queue_dir("remote.test"), ".state")), [])

    def test_fallback_to_next_mx(self):
        """The first MX refuses connections: the second one gets it."""
        sink = self.add_sink("127.0.0.3")
        self.dns.mx("fb.test", "mx1.fb.test", 10)
        self.dns.mx("fb.test", "mx2.fb.test", 20)
        self.dns.a("mx1.fb.test", "127.0.0.2")   # nothing listens there
        self.dns.a("mx2.fb.test", "127.0.0.3")
        self.start()
        self.send(["bob@fb.test"])
        wait_until(lambda: sink.letters, 10, "the letter at the second MX")
        self.wait_empty("fb.test")
        self.assert_logged((r"connect to mx1.fb.test\[127.0.0.2\]"))

    def test_implicit_mx(self):
        """No MX record: the domain's own A record is the host."""
        sink = self.add_sink("127.0.0.2")
        self.dns.a("implicit.test", "127.0.0.2")
        self.start()
        self.send(["bob@implicit.test"])
        wait_until(lambda: sink.letters, 10, "the letter")
        self.wait_empty("implicit.test")
        self.assertIn("query[A] implicit.test", self.dns.queries())

    def test_relayhost_skips_mx(self):
        """delivery.relayhost: every letter goes there, no MX query."""
        sink = self.add_sink("127.0.0.3")
        self.start(relayhost=harness.conf_string(
            "[127.0.0.3]:%d" % self.sink_port))
        self.send(["bob@nowhere.test"])
        wait_until(lambda: sink.letters, 10, "the letter at the relay")
        self.wait_empty("nowhere.test")
        self.assertNotIn("nowhere.test", self.dns.queries())

    def test_no_pipelining_no_8bitmime(self):
        """A server without PIPELINING and 8BITMIME: one command at a
        time, no BODY= parameter."""
        sink = self.add_sink("127.0.0.2")
        sink.ehlo = ["SIZE 10000000"]
        self.dns.mx("plain.test", "mx.plain.test", 10)
        self.dns.a("mx.plain.test", "127.0.0.2")
        self.start()
        c = self.daemon.client()
        c.expect_ok("EHLO client.test", 250)
        c.expect_ok("MAIL FROM:<alice@example.org> BODY=8BITMIME", 250)
        c.expect_ok("RCPT TO:<bob@plain.test>", 250)
        c.expect_ok("DATA", 354)
        c.expect_ok("Subject: x\r\n\r\n\xe9t\xe9\r\n.", 250)
        c.close()
        wait_until(lambda: sink.letters, 10, "the letter")
        self.assertNotIn("BODY=", sink.letters[0][0])


class TestFailures(DeliveryTest):

    def parse_bounce(self, raw):
        self.assertIn(b"Return-Path: <>\n", raw)
        msg = email.message_from_bytes(raw, policy=email.policy.compat32)
        self.assertEqual(msg.get_content_type(), "multipart/report")
        self.assertEqual(msg.get_param("report-type"), "delivery-status")
        self.assertTrue(msg["From"].startswith("MAILER-DAEMON@"))
        parts = msg.get_payload()
        self.assertEqual([p.get_content_type() for p in parts],
                         ["text/plain", "message/delivery-status",
                          "text/rfc822-headers"])
        status = parts[1].get_payload()
        # message/delivery-status: the per-message block, then one
        # block per recipient.
        fields = [dict(b.items()) for b in status]
        return msg, fields, parts

    def test_5xx_error_dir_and_bounce(self):
        """A 5xx to RCPT: the letter goes to error/, the sender gets an
        RFC 3464 bounce with every field, the queue is empty."""
        sink = self.add_sink("127.0.0.2")
        sink.rcpt = lambda a: "550 5.1.1 <%s>: no such user" % a
        self.dns.mx("hard.test", "mx.hard.test", 10)
        self.dns.a("mx.hard.test", "127.0.0.2")
        self.start()
        qid = self.send(["nobody@hard.test"])
        wait_until(lambda: self.errors("hard.test"), 10, "error/")
        self.wait_empty("hard.test")
        wait_until(lambda: self.daemon.files("alice"), 10, "the bounce")
        msg, fields, parts = self.parse_bounce(self.bounces()[0])
        self.assertEqual(fields[0]["Reporting-MTA"],
                         "dns; " + harness.HOSTNAME)
        r = fields[1]
        self.assertEqual(r["Final-Recipient"], "rfc822; nobody@hard.test")
        self.assertEqual(r["Action"], "failed")
        self.assertEqual(r["Status"], "5.1.1")
        self.assertEqual(r["Remote-MTA"], "dns; mx.hard.test")
        self.assertIn("550 5.1.1 <nobody@hard.test>: no such user",
                      r["Diagnostic-Code"])
        self.assertTrue(r["Diagnostic-Code"].startswith("smtp; "))
        self.assertIn("Subject: test", parts[2].get_payload())
        self.assertIn("id %s" % qid, parts[2].get_payload())
        err = self.errors("hard.test")[0]
        with open(os.path.join(self.daemon.queue_dir("hard.test"), "error",
                               err), "rb") as f:
            self.assertTrue(f.read().startswith(
                b"X-Envelope-From: <alice@example.org>\n"
                b"X-Envelope-To: <nobody@hard.test>\n"))
        with open(os.path.join(self.daemon.queue_dir("hard.test"), "error",
                               ".state", err)) as f:
            self.assertIn("550 5.1.1", f.read())
        self.assert_logged((r"to=<nobody@hard.test>.*status=bounced"))

    def test_nxdomain_bounces_at_once(self):
        self.start()
        self.send(["bob@nx.test"])
        wait_until(lambda: self.daemon.files("alice"), 10, "the bounce")
        self.wait_empty("nx.test")
        _, fields, _ = self.parse_bounce(self.bounces()[0])
        self.assertEqual(fields[1]["Status"], "5.1.2")
        self.assertNotIn("Remote-MTA", fields[1])
        self.assertEqual(len(self.errors("nx.test")), 1)

    def test_null_mx_bounces_at_once(self):
        self.dns.null_mx("nullmx.test")
        self.start()
        self.send(["bob@nullmx.test"])
        wait_until(lambda: self.daemon.files("alice"), 10, "the bounce")
        _, fields, _ = self.parse_bounce(self.bounces()[0])
        self.assertEqual(fields[1]["Status"], "5.1.10")
        self.assertIn("null MX", fields[1]["Diagnostic-Code"])

    def test_servfail_is_retried(self):
        """SERVFAIL: deferred with 4.4.3, never bounced; the state file
        says so and the letter stays queued."""
        self.dns.servfail_zone("broken.test")
        self.start(retry_first=60, retry_max=60)
        self.send(["bob@broken.test"])
        name = wait_until(lambda: self.deferred("broken.test"), 30, "a state")
        st = self.state("broken.test", name)
        self.assertEqual(st["attempts"], "1")
        self.assertIn("4.4.3", st["last_error"])
        self.assertGreater(int(st["next_attempt"]), time.time() + 30)
        self.assertEqual(self.daemon.files("alice"), [])
        # The logger writes on its own time: the record may come after
        # the state file.
        wait_until(lambda: self.log_has(r"to=<bob@broken.test>.*dsn=4.4.3, "
                                        r"status=deferred"), 10,
                   "the deferred record")

    def test_bounce_of_null_sender_is_not_bounced(self):
        sink = self.add_sink("127.0.0.2")
        sink.rcpt = lambda a: "550 5.1.1 no"
        self.dns.mx("hard.test", "mx.hard.test", 10)
        self.dns.a("mx.hard.test", "127.0.0.2")
        self.start()
        self.send(["nobody@hard.test"], sender="")
        wait_until(lambda: self.errors("hard.test"), 10, "error/")
        self.wait_empty("hard.test")
        self.assertEqual(self.daemon.files("alice"), [])
        self.assertEqual(self.daemon.queue_domains(), ["hard.test"])

    def test_remote_sender_bounce_is_queued(self):
        sink = self.add_sink("127.0.0.2")
        sink.rcpt = lambda a: ("550 5.1.1 no" if a.startswith("nobody")
                               else "250 ok")
        self.dns.mx("hard.test", "mx.hard.test", 10)
        self.dns.a("mx.hard.test", "127.0.0.2")
        self.dns.mx("sender.test", "mx.hard.test", 10)
        self.start()
        self.send(["nobody@hard.test"], sender="someone@sender.test")
        # The bounce is queued for sender.test and delivered like any mail.
        wait_until(lambda: any(m.startswith("MAIL FROM:<>")
                               for m, _, _ in sink.letters), 15,
                   "the bounce at the sender's MX")
        m, rcpts, data = [x for x in sink.letters
                          if x[0].startswith("MAIL FROM:<>")][0]
        self.assertEqual(rcpts, ["someone@sender.test"])
        self.assertIn(b"report-type=delivery-status", data)

    def test_loop_too_many_received(self):
        sink = self.add_sink("127.0.0.2")
        self.dns.mx("loop.test", "mx.loop.test", 10)
        self.dns.a("mx.loop.test", "127.0.0.2")
        self.start()
        hops = "".join("Received: from hop%d.test by hop.test; x\r\n" % i
                       for i in range(101))
        self.send(["bob@loop.test"], headers=hops)
        wait_until(lambda: self.daemon.files("alice"), 10, "the bounce")
        _, fields, _ = self.parse_bounce(self.bounces()[0])
        self.assertEqual(fields[1]["Status"], "5.4.6")
        self.assertEqual(sink.letters, [])

    def test_loop_destination_is_this_server(self):
        """The MX greets with our own host name: 5.4.6, never sent."""
        sink = self.add_sink("127.0.0.2", name=harness.HOSTNAME)
        self.dns.mx("self.test", "mx.self.test", 10)
        self.dns.a("mx.self.test", "127.0.0.2")
        self.start()
        self.send(["bob@self.test"])
        wait_until(lambda: self.daemon.files("alice"), 10, "the bounce")
        _, fields, _ = self.parse_bounce(self.bounces()[0])
        self.assertEqual(fields[1]["Status"], "5.4.6")
        self.assertEqual(sink.letters, [])


class TestRetries(DeliveryTest):

    def test_4xx_then_success_and_growing_interval(self):
        """451 twice, then 250: retried after retry_first, the interval
        growing (attempts and next_attempt in the state), then removed."""
        sink = self.add_sink("127.0.0.2")
        answers = ["451 4.7.1 greylisted", "451 4.7.1 greylisted"]
        times = []

        def rcpt(addr):
            times.append(time.monotonic())
            return answers.pop(0) if answers else "250 2.1.5 ok"
        sink.rcpt = rcpt
        self.dns.mx("grey.test", "mx.grey.test", 10)
        self.dns.a("mx.grey.test", "127.0.0.2")
        self.start(retry_first=1, retry_max=4)
        self.send(["bob@grey.test"])
        name = wait_until(lambda: self.deferred("grey.test"), 10, "a state")
        st = self.state("grey.test", name)
        self.assertEqual(st["attempts"], "1")
        self.assertIn("451 4.7.1 greylisted", st["last_error"])
        wait_until(lambda: sink.letters, 20, "the third attempt")
        self.wait_empty("grey.test")
        self.assertEqual(len(times), 3)
        self.assertGreaterEqual(times[1] - times[0], 0.9)
        # The second interval is twice the first (1 s, then 2 s).
        self.assertGreaterEqual(times[2] - times[1], 1.9)

    def test_partial_shrinks_to_deferred(self):
        """One recipient accepted, one deferred: the letter shrinks to
        the deferred one (a new file, same name), the other is not sent
        again."""
        sink = self.add_sink("127.0.0.2")
        sink.rcpt = lambda a: ("452 4.2.2 full" if a.startswith("later")
                               else "250 ok")
        self.dns.mx("part.test", "mx.part.test", 10)
        self.dns.a("mx.part.test", "127.0.0.2")
        self.start(retry_first=60, retry_max=60)
        self.send(["now@part.test", "later@part.test"])
        wait_until(lambda: sink.letters, 10, "the first letter")
        name = wait_until(lambda: self.deferred("part.test"), 10, "a state")
        text = self.daemon.read_queue("part.test", name)
        self.assertIn(b"X-Envelope-To: <later@part.test>\n", text)
        self.assertNotIn(b"now@part.test", text.split(b"Received:")[0])
        self.assertEqual(sink.letters[0][1], ["now@part.test"])

    def test_max_lifetime_bounces(self):
        """Deferred past max_lifetime: failed for good, bounced."""
        sink = self.add_sink("127.0.0.2")
        sink.rcpt = lambda a: "451 4.3.0 try later"
        self.dns.mx("old.test", "mx.old.test", 10)
        self.dns.a("mx.old.test", "127.0.0.2")
        self.start(retry_first=1, retry_max=1, max_lifetime=2)
        self.send(["bob@old.test"])
        wait_until(lambda: self.daemon.files("alice"), 20, "the bounce")
        self.wait_empty("old.test")
        raw = self.bounces()[0]
        msg = email.message_from_bytes(raw)
        fields = [dict(b.items()) for b in msg.get_payload()[1].get_payload()]
        self.assertEqual(fields[1]["Action"], "failed")
        self.assertIn("451 4.3.0 try later", fields[1]["Diagnostic-Code"])
        self.assertIn("expired", fields[1]["Diagnostic-Code"])

    def test_sigusr1_retries_now(self):
        sink = self.add_sink("127.0.0.2")
        answers = ["451 4.7.1 later"]
        sink.rcpt = lambda a: answers.pop(0) if answers else "250 ok"
        self.dns.mx("usr.test", "mx.usr.test", 10)
        self.dns.a("mx.usr.test", "127.0.0.2")
        self.start(retry_first=3600, retry_max=3600)
        self.send(["bob@usr.test"])
        wait_until(lambda: self.deferred("usr.test"), 10, "a deferral")
        self.assertEqual(sink.letters, [])
        self.daemon.signal(signal.SIGUSR1)
        wait_until(lambda: sink.letters, 10, "the retry after SIGUSR1")
        self.wait_empty("usr.test")

    def test_dropped_connection_is_deferred(self):
        sink = self.add_sink("127.0.0.2")
        sink.drop_at_data = True
        self.dns.mx("drop.test", "mx.drop.test", 10)
        self.dns.a("mx.drop.test", "127.0.0.2")
        self.start(retry_first=60, retry_max=60)
        self.send(["bob@drop.test"])
        name = wait_until(lambda: self.deferred("drop.test"), 10, "a state")
        self.assertIn("4.4.2", self.state("drop.test", name)["last_error"])


class TestInspect(DeliveryTest):

    def test_inspect_shows_state(self):
        sink = self.add_sink("127.0.0.2")
        sink.rcpt = lambda a: "451 4.7.1 greylisted"
        self.dns.mx("grey.test", "mx.grey.test", 10)
        self.dns.a("mx.grey.test", "127.0.0.2")
        self.start(retry_first=600, retry_max=600)
        qid = self.send(["bob@grey.test"])
        wait_until(lambda: self.deferred("grey.test"), 10, "a deferral")
        inspect = os.environ.get("MAILDIR_INSPECT") or os.path.join(
            harness.HERE, "..", "..", "src", "maildir-inspect",
            "maildir-inspect")
        import json
        out = subprocess.run([inspect, "-d", self.daemon.root, "--json",
                              "list"], capture_output=True, check=True)
        data = json.loads(out.stdout)
        letter = data["letters"][0]
        self.assertEqual(letter["attempts"], 1)
        self.assertGreater(letter["next_attempt"], time.time() + 500)
        self.assertIn("451 4.7.1 greylisted", letter["last_error"])
        out = subprocess.run([inspect, "-d", self.daemon.root, "show", qid],
                             capture_output=True, check=True, text=True)
        self.assertIn("attempts: 1", out.stdout)
        self.assertIn("451 4.7.1 greylisted", out.stdout)
        out = subprocess.run([inspect, "-d", self.daemon.root, "check"],
                             capture_output=True, text=True)
        self.assertEqual(out.returncode, 0, out.stdout + out.stderr)


class TestCrash(DeliveryTest):

    def test_agent_killed_is_restarted_nothing_lost(self):
        """kill -9 of the agent in the middle of DATA: a new agent is
        forked, takes the claim back and delivers (at least once)."""
        sink = self.add_sink("127.0.0.2")
        stall = threading.Event()
        orig = sink.data

        self.dns.mx("crash.test", "mx.crash.test", 10)
        self.dns.a("mx.crash.test", "127.0.0.2")
        sink.drop_at_data = False
        first = [True]

        def rcpt(a):
            if first[0]:
                first[0] = False
                stall.set()
                time.sleep(3 * SLOW)   # the sink is slow: the agent waits
            return "250 ok"
        sink.rcpt = rcpt
        self.start()
        self.send(["bob@crash.test"])
        wait_until(stall.is_set, 10, "the agent in the middle of a letter")
        self.assertTrue(self.claimed("crash.test"))
        pids = self.agents()
        self.assertEqual(len(pids), 1)
        os.kill(pids[0], signal.SIGKILL)
        wait_until(lambda: self.agents() and self.agents() != pids, 10,
                   "a new agent")
        wait_until(lambda: sink.letters, 20, "the letter delivered")
        self.wait_empty("crash.test")
        self.assert_logged((r"delivery agent \d+ killed by signal 9"))
        self.assertEqual(sink.data, orig)

    def agents(self):
        """The daemon's children that are delivery agents (not the
        logger): they have a TCP socket or inotify; simpler: every child
        but the logger, whose pid the log names."""
        m = re.findall(r"delivery agent (?:started|serving).*?pid (\d+)",
                       self.daemon.log())
        alive = set(harness.children_of(self.daemon.proc.pid))
        return [int(p) for p in m if int(p) in alive][-1:]

    def test_server_keeps_receiving_while_agent_stopped(self):
        self.add_sink("127.0.0.2")
        self.dns.mx("stop.test", "mx.stop.test", 10)
        self.dns.a("mx.stop.test", "127.0.0.2")
        self.start()
        pid = wait_until(self.agents, 10, "the agent")[0]
        os.kill(pid, signal.SIGSTOP)
        try:
            for _ in range(3):
                self.send(["bob@stop.test"])
            self.assertEqual(len(self.queued("stop.test")), 3)
        finally:
            os.kill(pid, signal.SIGCONT)
        self.wait_empty("stop.test")

    def test_daemon_killed_mid_delivery(self):
        """kill -9 of the whole daemon while the agent sends: a new daemon
        delivers the letter (at least once, never zero times)."""
        sink = self.add_sink("127.0.0.2")
        stall = threading.Event()
        first = [True]

        def rcpt(a):
            if first[0]:
                first[0] = False
                stall.set()
                time.sleep(3 * SLOW)
            return "250 ok"
        sink.rcpt = rcpt
        self.dns.mx("dk.test", "mx.dk.test", 10)
        self.dns.a("mx.dk.test", "127.0.0.2")
        self.start()
        self.send(["bob@dk.test"])
        wait_until(stall.is_set, 10, "the agent in the middle of a letter")
        self.daemon.proc.kill()
        self.daemon.proc.wait(10)
        # The agent sees its daemon gone and stops (putting its claim
        # back, or leaving it to be taken back); a new daemon on the same
        # tree delivers it.
        self.restart_same(self.daemon)
        wait_until(lambda: sink.letters, 20, "the letter delivered")
        self.wait_empty("dk.test")

    def restart_same(self, d):
        logf = open(d.log_path, "ab")
        try:
            d.proc = subprocess.Popen(d.command(), stdin=subprocess.DEVNULL,
                                      stdout=logf, stderr=logf, cwd=d.dir)
        finally:
            logf.close()
        self.assertTrue(d._wait_ready(), d.log_tail())


if __name__ == "__main__":
    unittest.main()
