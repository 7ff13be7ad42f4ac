"""test_hostile_table - every hostile input as one table, end to end.

Each row of TABLE is one client on a fresh connection: what it sends
(in one or more steps), the reply codes and enhanced codes it must get
back, in order, how it leaves (QUIT after a NOOP that must come next,
a close by the server, or a close or reset of its own at that point), and
which files the daemon may have made for it (none, unless the row says
so). The rows cover the hostile cases of the core and relay issues in
compact form, plus path traversal in local parts and domains, over-long
everything, NUL and 8-bit bytes in commands, every SMTP smuggling ending,
HTTP and TLS spoken to the SMTP port, a disconnect at every stage and
relay tricks from a client outside relay.networks (bound to 127.0.0.2).

After every row:
  - the set of files and directories below a private jail directory
    (which holds the daemon's directory and so its Maildir root) differs
    from the one before the row by exactly the files the row allows, in
    root/<user>/new/ or root/.OTHER_SERVERS/<domain>/ (and the domain's
    directories), and every stored file is complete;
  - no file lies anywhere but in root/<user>/new/ or
    root/.OTHER_SERVERS/<domain>/ (so none in any tmp/);
  - no traversal target outside the jail exists;
  - the daemon still serves (a new client gets 220 and NOOP 250).
One daemon serves each group of rows; a group that kills it gets a new
one, so that one crash does not hide the other rows' results.
"""

import collections
import os
import shutil
import socket
import struct
import tempfile
import time
import unittest
import uuid

from harness import Client, Daemon, HELO, SLOW, IO_TIMEOUT, is_lock_file

CRLF = b"\r\n"
# A name no one else uses, for traversal targets outside the jail.
MARK = "pollsmtpd-hostile-" + uuid.uuid4().hex[:12]
MAX_SIZE = 2 * 1024 * 1024
USERS = ["alice", "bob"]


def b(s):
    return s if isinstance(s, bytes) else s.encode("latin-1")


def parse_reply(spec):
    """"250 2.1.0" -> (250, "2.1.0"); "354" -> (354, None)."""
    words = spec.split()
    return (int(words[0]), words[1] if len(words) > 1 else None)


def S(data, *replies):
    """One step: bytes to send, then the replies expected, in order."""
    return (b(data), [parse_reply(r) for r in replies])


def line(text):
    return b(text) + CRLF


class Case:
    """One row of the table.

    steps   [(bytes, [(code, enhanced)...])...]: sent in turn, each
            followed by reading exactly its replies;
    end     "noop":   then NOOP must answer 250 2.0.0 (so no extra reply
                      came before it), QUIT 221 2.0.0 and a close;
            "closed": the server must close with no more bytes;
            "close" / "reset": the client closes (FIN) / resets (RST);
            "quiet":  no more replies within a moment, then the client
                      closes;
            "refused": read until the server closes or falls quiet:
                      it may answer with errors or close, but it may
                      take no command (no 250, 251 or 354);
    stores  places where one new file each is allowed and required:
            "alice", "bob" (root/<user>/new) or "q:DOMAIN";
    maybe   the stores are allowed but not required (all or nothing);
    body    the message text (LF ends) every stored file must end with;
    source  the client's address (127.0.0.2 is outside relay.networks);
    check   optional callable(case, [(place, bytes)]) for more asserts;
    early   the client talks before the greeting (it is not read first).
    """

    def __init__(self, name, steps, end="noop", stores=(), maybe=False,
                 body=None, source=None, check=None, absent=(),
                 early=False):
        self.early = early
        self.name = name
        self.steps = steps
        self.end = end
        self.stores = list(stores)
        self.maybe = maybe
        self.body = body
        self.source = source
        self.check = check
        self.absent = list(absent)


EHLO = S(line("EHLO " + HELO), "250")
MAIL = S(line("MAIL FROM:<s@x.example>"), "250 2.1.0")
RCPT_ALICE = S(line("RCPT TO:<alice@example.org>"), "250 2.1.5")
DATA = S(line("DATA"), "354")
OPEN = [EHLO, MAIL, RCPT_ALICE, DATA]     # ready for message text


def rcpt_case(name, addr, *replies, source=None, absent=()):
    """EHLO, MAIL, then RCPT TO:<addr> with the replies given."""
    return Case(name, [EHLO, MAIL, S(line(b"RCPT TO:<" + b(addr) + b">"),
                                     *replies)],
                source=source, absent=absent)


def mail_case(name, addr, *replies):
    return Case(name, [EHLO, S(line(b"MAIL FROM:<" + b(addr) + b">"),
                               *replies)])


def domain_of(length, last="example"):
    """A syntactically valid domain of exactly length octets."""
    labels = []
    left = length - len(last)
    while left > 0:
        n = min(60, left - 1)       # label plus its dot
        if n < 1:
            # One octet left: make the previous label longer instead.
            labels[-1] += "y"
            left -= 1
            continue
        labels.append("d" * n)
        left -= n + 1
    d = ".".join(labels + [last])
    assert len(d) == length, (len(d), length)
    return d


def tls_client_hello(pad_to=512):
    """A TLS 1.3 ClientHello record as browsers send it (fixed random,
    session id and key share, so the bytes, and thus the replies, do not
    change from run to run). It holds NUL and 8-bit bytes and, as real
    ones do, 0x0a bytes (the supported_groups type is 10)."""
    def ext(etype, data):
        return struct.pack("!HH", etype, len(data)) + data

    host = b"mx.test.example"
    sni = struct.pack("!HBH", len(host) + 3, 0, len(host)) + host
    groups = struct.pack("!HHH", 4, 0x001d, 0x0017)
    sigs = struct.pack("!HHHH", 6, 0x0403, 0x0804, 0x0401)
    versions = struct.pack("!BHH", 4, 0x0304, 0x0303)
    key = bytes(range(0x41, 0x61))
    share = struct.pack("!HHH", 36, 0x001d, 32) + key
    exts = (ext(0, sni) + ext(10, groups) + ext(11, b"\x01\x00") +
            ext(13, sigs) + ext(43, versions) + ext(51, share))
    suites = [0x1301, 0x1302, 0x1303, 0xc02b, 0xc02f, 0xc02c, 0xc030]
    body = (b"\x03\x03" + bytes(range(0x20, 0x40)) +       # random
            b"\x20" + bytes(range(0x60, 0x80)) +            # session id
            struct.pack("!H", 2 * len(suites)) +
            b"".join(struct.pack("!H", s) for s in suites) +
            b"\x01\x00")
    # Padding extension (21) up to pad_to octets of handshake body.
    plain = len(body) + 2 + len(exts)
    if pad_to and plain + 4 < pad_to:
        exts += ext(21, b"\x00" * (pad_to - plain - 4))
    body += struct.pack("!H", len(exts)) + exts
    hs = b"\x01" + struct.pack("!I", len(body))[1:] + body
    return b"\x16\x03\x01" + struct.pack("!H", len(hs)) + hs


def garbage_replies(data):
    """The replies a stream of non-command bytes earns by the contract:
    one 500 5.5.2 per line (LF-terminated; bare LF, NUL, 8-bit) and one
    per 512 octets without LF; an unterminated short tail none."""
    out = []
    rest = data
    while rest:
        lf = rest.find(b"\n")
        if lf < 0 or lf >= 512:
            if lf < 0 and len(rest) < 512:
                break
            out.append("500 5.5.2")
            # The rest of an over-long line is discarded up to its LF.
            rest = rest[lf + 1:] if lf >= 0 else b""
            continue
        seg = rest[:lf + 1]
        assert (seg[-2:-1] != b"\r" or any(c >= 0x80 or c == 0
                                           for c in seg)), seg
        out.append("500 5.5.2")
        rest = rest[lf + 1:]
    return out


def smuggle_case(ending, split=False):
    """Text with a fake end of data, a smuggled transaction, then the
    real end: one 550 5.5.2 for the whole, nothing stored."""
    text = [b"Subject: smuggling\r\n\r\nhello"]
    text += [bytes([c]) for c in ending] if split else [ending]
    text.append(b"MAIL FROM:<evil@x.example>\r\nRCPT TO:<bob@example.org>"
                b"\r\nDATA\r\nsmuggled\r\n")
    steps = OPEN + [S(t) for t in text] + [S(b"\r\n.\r\n", "550 5.5.2")]
    return Case("smuggling %r%s" % (ending, " byte by byte" if split else ""),
                steps)


def envelope_of(data):
    """The leading X-Envelope-* lines of a queue file."""
    out = []
    for l in data.split(b"\n"):
        if not l.startswith(b"X-Envelope-"):
            break
        out.append(l.decode("latin-1"))
    return out


def check_envelope(expected):
    def check(tc, case, files):
        for place, data in files:
            tc.assertEqual(envelope_of(data), expected, case.name)
    return check


def check_received_helo(helo):
    def check(tc, case, files):
        for place, data in files:
            tc.assertIn(b"Received: from " + b(helo) + b" ([127.0.0.1])",
                        data, case.name)
    return check


DOT_BODY = (b"Subject: dots\n\nhello\n.\nMAIL FROM:<evil@x.example>\n"
            b"RCPT TO:<bob@example.org>\nDATA\nnot smuggled\n")
BIG_LINE = b"x" * (1024 * 1024)
LOCAL64 = "l" * 64
D189 = domain_of(189, "remote")     # "<" 64 "@" 189 ">" = 256 octets
D190 = domain_of(190, "remote")     # 257 octets
D252 = domain_of(252, "remote")     # "<x@" 252 ">" = 256 octets
D255 = domain_of(255)
D256 = domain_of(256)
HELLO = tls_client_hello()
HELLO_SHORT = tls_client_hello(pad_to=0)
assert b"\n" in HELLO and b"\x00" in HELLO

XPROTO_BODY = (b"EHLO x\r\nMAIL FROM:<attacker@evil.example>\r\n"
               b"RCPT TO:<bob@example.org>\r\nDATA\r\n"
               b"Subject: via HTTP\r\n\r\nhi\r\n.\r\nQUIT\r\n")
XPROTO_POST = (
    b"POST / HTTP/1.1\r\nHost: 127.0.0.1:25\r\nConnection: keep-alive\r\n"
    b"Content-Length: %d\r\nCache-Control: max-age=0\r\n"
    b"Origin: http://evil.example\r\nContent-Type: text/plain\r\n"
    b"User-Agent: Mozilla/5.0 (X11; Linux x86_64) Chrome/120.0\r\n"
    b"Accept: text/html\r\nReferer: http://evil.example/\r\n"
    b"Accept-Encoding: gzip, deflate\r\nAccept-Language: en-US\r\n\r\n"
    % len(XPROTO_BODY)) + XPROTO_BODY

TABLE = collections.OrderedDict()

# -- path traversal in local parts and domains ----------------------------
TABLE["traversal"] = [
    rcpt_case("dotted traversal local part", "../../etc/passwd@example.org",
              "501 5.1.3"),
    rcpt_case("quoted traversal local part, local domain",
              '"../../etc/passwd"@example.org', "550 5.1.1"),
    rcpt_case("traversal inside a user name", "alice/../bob@example.org",
              "501 5.1.3"),
    rcpt_case("slash in a local part is only a name", "alice/x@example.org",
              "550 5.1.1"),
    rcpt_case("leading dot local part", ".alice@example.org", "501 5.1.3"),
    rcpt_case("trailing dot local part", "alice.@example.org", "501 5.1.3"),
    rcpt_case("quoted user name is the user", '"alice"@example.org',
              "250 2.1.5"),
    rcpt_case("domain ../../tmp", "x@../../tmp", "501 5.1.3"),
    rcpt_case("domain with a slash", "x@a/b.example", "501 5.1.3"),
    rcpt_case("domain with a leading dot", "x@.example", "501 5.1.3"),
    rcpt_case("domain ..", "x@..", "501 5.1.3"),
    rcpt_case("domain with an empty label", "x@a..example", "501 5.1.3"),
    rcpt_case("domain with a trailing dot", "x@remote.example.",
              "501 5.1.3"),
    rcpt_case("domain label starts with a hyphen", "x@-bad.example",
              "501 5.1.3"),
    rcpt_case("local domain then traversal", "x@example.org/../../tmp",
              "501 5.1.3"),
    rcpt_case("backslash in a domain", "x@a\\b.example", "501 5.1.3"),
    rcpt_case("backslash traversal local part", "..\\..\\x@example.org",
              "501 5.1.3"),
    rcpt_case("quoted backslash traversal, local domain",
              '"..\\\\..\\\\x"@example.org', "550 5.1.1"),
    rcpt_case("%2e%2e domain", "x@%2e%2e", "501 5.1.3"),
    rcpt_case("%2e%2e%2f domain", "x@%2e%2e%2ftmp", "501 5.1.3"),
    rcpt_case("%2e%2e local part is only a name", "%2e%2e%2fetc@example.org",
              "550 5.1.1"),
    # 8-bit in a path needs SMTPUTF8, not offered: 553 5.6.7 (RFC 6531).
    rcpt_case("UTF-8 local part", "j\xc3\xbcrgen@example.org", "553 5.6.7"),
    rcpt_case("UTF-8 one-dot-leader domain", "x@\xe2\x80\xa4\xe2\x80\xa4",
              "553 5.6.7"),
    rcpt_case("overlong UTF-8 slash in a domain", "x@a\xc0\xafb.example",
              "553 5.6.7"),
    rcpt_case("Latin-1 domain", "x@ex\xe4mple.org", "553 5.6.7"),
    rcpt_case("IPv4 literal is no directory", "x@[127.0.0.1]", "550 5.7.1"),
    rcpt_case("IPv6 literal is no directory", "x@[IPv6:::1]", "550 5.7.1"),
    rcpt_case("general literal with traversal",
              "x@[x:../../../../../../../../tmp/%s]" % MARK, "550 5.7.1",
              absent=["/tmp/" + MARK]),
    rcpt_case("literal without a tag", "x@[../../tmp]", "501 5.1.3"),
    rcpt_case("literal with a backslash", "x@[x:..\\..]", "501 5.1.3"),
    rcpt_case("source route with traversal", "@../..:x@example.org",
              "501 5.1.3"),
    mail_case("sender with a traversal domain", "x@../../tmp", "501 5.1.7"),
    mail_case("sender with a traversal local part", "../x@x.example",
              "501 5.1.7"),
    # A quoted local part may hold anything printable; it is queued,
    # under the domain's directory only, never used as a path.
    Case("quoted traversal local part, remote domain, queued",
         [EHLO, MAIL,
          S(line('RCPT TO:<"../../../../../../../../tmp/%s"@remote.example>'
                 % MARK), "250 2.1.5"),
          DATA, S(b"Subject: q\r\n\r\nx\r\n.\r\n", "250 2.0.0")],
         stores=["q:remote.example"], body=b"Subject: q\n\nx\n",
         absent=["/tmp/" + MARK],
         check=check_envelope(
             ["X-Envelope-From: <s@x.example>",
              'X-Envelope-To: <"../../../../../../../../tmp/%s"'
              '@remote.example>' % MARK])),
    Case("source route with a traversal local part, queued",
         [EHLO, MAIL,
          S(line('RCPT TO:<@a.example,@b.example:"../x"@Remote.Example>'),
            "250 2.1.5"),
          DATA, S(b"Subject: r\r\n\r\nx\r\n.\r\n", "250 2.0.0")],
         stores=["q:remote.example"], body=b"Subject: r\n\nx\n"),
    Case("EHLO argument with traversal is refused",
         [S(line("EHLO ../../../tmp/" + MARK), "501 5.5.4"),
          S(line("MAIL FROM:<s@x.example>"), "503 5.5.1")],
         absent=["/tmp/" + MARK]),
    Case("EHLO name is what Received: names",
         [S(line("EHLO My_PC.example"), "250"), MAIL, RCPT_ALICE,
          DATA, S(b"Subject: h\r\n\r\nx\r\n.\r\n", "250 2.0.0")],
         stores=["alice"], body=b"Subject: h\n\nx\n",
         check=check_received_helo("My_PC.example")),
]

# -- over-long everything ----------------------------------------------------
TABLE["long"] = [
    Case("command line of 512 octets", [S(b"NOOP " + b"x" * 505 + CRLF,
                                          "250 2.0.0")]),
    Case("command line of 513 octets", [S(b"NOOP " + b"x" * 506 + CRLF,
                                          "500 5.5.2")]),
    Case("the tail of a long line is not run",
         [EHLO, MAIL, RCPT_ALICE,
          S(b"NOOP " + b"x" * 507 + b"RSET\r\nDATA\r\n", "500 5.5.2", "354"),
          S(b"Subject: tail\r\n\r\nx\r\n.\r\n", "250 2.0.0")],
         stores=["alice"], body=b"Subject: tail\n\nx\n"),
    Case("a 1 MB command line: one reply, nothing run",
         [EHLO, S(b"MAIL FROM:<" + BIG_LINE + b"@x.example>\r\nNOOP\r\n",
                  "500 5.5.2", "250 2.0.0"),
          S(line("RCPT TO:<alice@example.org>"), "503 5.5.1")]),
    Case("1 MB of 8-bit bytes and NUL without a line end, then CRLF",
         [S(b"\xff\x00" * (512 * 1024) + CRLF, "500 5.5.2")]),
    Case("a flood of bare LFs: 20 errors, then 421",
         [S(b"\n" * (1024 * 1024), *(["500 5.5.2"] * 20 + ["421 4.7.0"]))],
         end="closed"),
    mail_case("sender local part of 65", "s" * 65 + "@x.example",
              "501 5.1.7"),
    rcpt_case("recipient local part of 64", LOCAL64 + "@example.org",
              "550 5.1.1"),
    rcpt_case("recipient local part of 65", "l" * 65 + "@example.org",
              "501 5.1.3"),
    rcpt_case("quoted local part over 64", '"%s"@example.org' % ("q" * 63),
              "501 5.1.3"),
    rcpt_case("domain of 255 (path 259)", "x@" + D255, "501 5.1.3"),
    rcpt_case("domain of 256", "x@" + D256, "501 5.1.3"),
    mail_case("sender domain of 256", "x@" + D256, "501 5.1.7"),
    rcpt_case("label of 64", "x@" + "a" * 64 + ".example", "501 5.1.3"),
    rcpt_case("path of 257", LOCAL64 + "@" + D190, "501 5.1.3"),
    rcpt_case("path of 257 by a source route",
              "@" + "r" * 60 + ".example:" + LOCAL64 + "@" +
              domain_of(120, "remote"), "501 5.1.3"),
    Case("path of 256 is fine and queued",
         [EHLO, MAIL, S(line("RCPT TO:<%s@%s>" % (LOCAL64, D189)),
                        "250 2.1.5"),
          DATA, S(b"Subject: 256\r\n\r\nx\r\n.\r\n", "250 2.0.0")],
         stores=["q:" + D189], body=b"Subject: 256\n\nx\n"),
    Case("domain of 252 in a path of 256 is a directory name",
         [EHLO, MAIL, S(line("RCPT TO:<x@%s>" % D252.upper()), "250 2.1.5"),
          DATA, S(b"Subject: 252\r\n\r\nx\r\n.\r\n", "250 2.0.0")],
         stores=["q:" + D252], body=b"Subject: 252\n\nx\n"),
    Case("EHLO argument of 255", [S(line("EHLO " + domain_of(255)),
                                    "250")]),
    Case("EHLO argument of 256", [S(line("EHLO " + domain_of(256)),
                                    "501 5.5.4"),
                                  S(line("MAIL FROM:<s@x.example>"),
                                    "503 5.5.1")]),
    Case("a text line of 1 MB is stored unchanged",
         OPEN + [S(b"Subject: big line\r\n\r\n" + BIG_LINE + b"\r\n.\r\n",
                   "250 2.0.0")],
         stores=["alice"], body=b"Subject: big line\n\n" + BIG_LINE + b"\n"),
    Case("message over max_message_size: 552, nothing stored",
         OPEN + [S(b"Subject: too big\r\n\r\n" +
                   (b"y" * 998 + CRLF) * (MAX_SIZE // 1000 + 10) +
                   b".\r\n", "552 5.3.4")]),
    Case("SIZE= over the limit", [EHLO, S(line(
        "MAIL FROM:<s@x.example> SIZE=%d" % (MAX_SIZE + 1)), "552 5.3.4")]),
    Case("SIZE= with 400 digits", [EHLO, S(line(
        "MAIL FROM:<s@x.example> SIZE=" + "9" * 400), "552 5.3.4")]),
]

# -- NUL, 8-bit and control bytes in commands; bare line ends --------------
TABLE["bytes"] = [
    Case("NUL in a command", [S(b"NOOP\x00\r\n", "500 5.5.2")]),
    Case("a lone NUL line", [S(b"\x00\r\n", "500 5.5.2")]),
    Case("NUL inside a sender: not run",
         [EHLO, S(b"MAIL FROM:<a\x00b@x.example>\r\n", "500 5.5.2"),
          S(line("RCPT TO:<alice@example.org>"), "503 5.5.1")]),
    Case("NUL after a recipient: not run",
         [EHLO, MAIL, S(b"RCPT TO:<alice@example.org>\x00\r\n", "500 5.5.2"),
          S(line("DATA"), "503 5.5.1")]),
    Case("8-bit in EHLO", [S(b"EHLO caf\xc3\xa9.example\r\n", "500 5.5.2"),
                           S(line("MAIL FROM:<s@x.example>"), "503 5.5.1")]),
    Case("8-bit verb", [S(b"\xff\xfeNOOP\r\n", "500 5.5.2")]),
    Case("control byte in EHLO", [S(b"EHLO a\x01b\r\n", "501 5.5.4")]),
    Case("DEL in EHLO", [S(b"EHLO a\x7fb\r\n", "501 5.5.4")]),
    Case("escape sequence in EHLO", [S(b"EHLO \x1b[2J\r\n", "501 5.5.4")]),
    Case("EHLO with two words", [S(b"EHLO a b\r\n", "501 5.5.4")]),
    Case("bare LF ends no command",
         [EHLO, MAIL, RCPT_ALICE, S(b"RSET\n", "500 5.5.2"), DATA,
          S(b"Subject: lf\r\n\r\nx\r\n.\r\n", "250 2.0.0")],
         stores=["alice"], body=b"Subject: lf\n\nx\n"),
    Case("bare CR ends no command",
         [EHLO, MAIL, S(b"RCPT TO:<bob@example.org>\rRSET\r\n", "500 5.5.2"),
          RCPT_ALICE, DATA, S(b"Subject: cr\r\n\r\nx\r\n.\r\n", "250 2.0.0")],
         stores=["alice"], body=b"Subject: cr\n\nx\n"),
    Case("8-bit bytes in message text are kept",
         OPEN + [S(b"Subject: bin\r\n\r\na\x01b\xff\xfe\xc3\xa9\r\n.\r\n",
                   "250 2.0.0")],
         stores=["alice"], body=b"Subject: bin\n\na\x01b\xff\xfe\xc3\xa9\n"),
    Case("NUL in message text: 550 5.6.0, nothing stored",
         OPEN + [S(b"Subject: nul\r\n\r\na\x00b\r\n.\r\n", "550 5.6.0")]),
    Case("NUL on a dot line (a next hop that drops NULs would end there)",
         OPEN + [S(b"Subject: nul\r\n\r\nx\r\n.\x00\r\nMAIL FROM:<e@x>\r\n"
                   b".\r\n", "550 5.6.0")]),
    Case("bare LF in message text: 550, nothing stored",
         OPEN + [S(b"Subject: lf\r\n\r\nbare\nlf\r\n.\r\n", "550 5.5.2")]),
    Case("bare CR in message text: 550, nothing stored",
         OPEN + [S(b"Subject: cr\r\n\r\nbare\rcr\r\n.\r\n", "550 5.5.2")]),
]

# -- SMTP smuggling ----------------------------------------------------------
ENDINGS = [b"\n.\n", b"\n.\r\n", b"\r.\r", b"\r\n.\n", b"\n.\r",
           b"\r\n.\r", b"\r.\n", b"\r.\r\n", b"\r\n.\r\r\n", b"\n..\n",
           b"\r\n..\n", b"\r\n.\n\r\n"]
TABLE["smuggling"] = (
    [smuggle_case(e) for e in ENDINGS] +
    [smuggle_case(e, split=True) for e in (b"\n.\n", b"\r\n.\n", b"\r.\r\n",
                                           b"\n.\r\n")] +
    [Case("smuggling in a pipelined transaction",
          [EHLO, S(b"MAIL FROM:<s@x.example>\r\nRCPT TO:<alice@example.org>"
                   b"\r\nDATA\r\nSubject: p\r\n\r\nhello\n.\n"
                   b"MAIL FROM:<evil@x.example>\r\nRCPT TO:<bob@example.org>"
                   b"\r\nDATA\r\nsmuggled\r\n.\r\n",
                   "250 2.1.0", "250 2.1.5", "354", "550 5.5.2")]),
     Case("a dot-stuffed dot line is text, not an end",
          OPEN + [S(b"Subject: dots\r\n\r\nhello\r\n..\r\n"
                    b"MAIL FROM:<evil@x.example>\r\n"
                    b"RCPT TO:<bob@example.org>\r\nDATA\r\nnot smuggled\r\n"
                    b".\r\n", "250 2.0.0")],
          stores=["alice"], body=DOT_BODY)])

# -- not SMTP at all: HTTP and TLS --------------------------------------------
TABLE["not smtp"] = [
    # HTTP gets errors or a close (whichever the daemon chooses: 500 for
    # each line, or Postfix's way, a close at the first HTTP verb), and
    # no line of it is ever taken as a command.
    Case("HTTP GET", [S(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")],
         end="refused"),
    Case("HTTP GET before the greeting",
         [S(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")], end="refused",
         early=True),
    Case("HTTP POST with a form body",
         [S(b"POST /login HTTP/1.1\r\nHost: 127.0.0.1\r\n"
            b"Content-Type: application/x-www-form-urlencoded\r\n"
            b"Content-Length: 19\r\n\r\nuser=a&password=b\r\n")],
         end="refused"),
    # What a web page can make a browser send (text/plain form, sent
    # without waiting for the greeting): its body must not become mail.
    Case("HTTP POST whose body is an SMTP transaction (cross-protocol)",
         [S(XPROTO_POST)], end="refused", early=True),
    Case("HTTP CONNECT proxy probe",
         [S(b"CONNECT 127.0.0.1:25 HTTP/1.0\r\n\r\n")], end="refused"),
    Case("TLS ClientHello of 517 octets", [S(HELLO, *garbage_replies(HELLO))],
         end="quiet"),
    Case("short TLS ClientHello", [S(HELLO_SHORT,
                                     *garbage_replies(HELLO_SHORT))],
         end="quiet"),
    Case("TLS ClientHello, then SMTP on the same connection",
         [S(HELLO + CRLF, *garbage_replies(HELLO + CRLF)), EHLO, MAIL,
          RCPT_ALICE]),
    Case("PROXY protocol header", [S(b"PROXY TCP4 1.2.3.4 5.6.7.8 1 25\r\n",
                                     "500 5.5.1")]),
    Case("too many errors: 421 4.7.0 and close",
         [S(b"XYZZY\r\n" * 25, *(["500 5.5.1"] * 20 + ["421 4.7.0"]))],
         end="closed"),
]

# -- a disconnect at every stage ----------------------------------------------
BODY_CUT = b"Subject: cut\r\n\r\n" + b"partial line\r\n" * 50
TABLE["disconnect"] = [
    Case("close after the greeting", [], end="close"),
    Case("reset after the greeting", [], end="reset"),
    Case("close after EHLO", [EHLO], end="close"),
    Case("close in the middle of a command",
         [EHLO, S(b"MAIL FROM:<s@x.exam")], end="close"),
    Case("close after MAIL", [EHLO, MAIL], end="close"),
    Case("close after RCPT", [EHLO, MAIL, RCPT_ALICE], end="close"),
    Case("reset after RCPT", [EHLO, MAIL, RCPT_ALICE], end="reset"),
    Case("close after DATA", OPEN, end="close"),
    Case("close in DATA, mid-line", OPEN + [S(BODY_CUT + b"half a li")],
         end="close"),
    Case("reset in DATA, mid-line", OPEN + [S(BODY_CUT + b"half a li")],
         end="reset"),
    Case("close in DATA after whole lines", OPEN + [S(BODY_CUT)],
         end="close"),
    Case("close in DATA after CRLF.", OPEN + [S(BODY_CUT + b".")],
         end="close"),
    Case("close in DATA after CRLF.CR", OPEN + [S(BODY_CUT + b".\r")],
         end="close"),
    Case("reset in DATA after CRLF.CR", OPEN + [S(BODY_CUT + b".\r")],
         end="reset"),
    Case("close after the final dot, reply unread",
         OPEN + [S(b"Subject: dot\r\n\r\nx\r\n.\r\n")], end="close",
         stores=["alice"], maybe=True, body=b"Subject: dot\n\nx\n"),
    Case("reset after the final dot, reply unread",
         OPEN + [S(b"Subject: dot\r\n\r\nx\r\n.\r\n")], end="reset",
         stores=["alice"], maybe=True, body=b"Subject: dot\n\nx\n"),
    Case("pipelined transaction and QUIT, close without reading",
         [S(b"EHLO x.example\r\nMAIL FROM:<s@x.example>\r\n"
            b"RCPT TO:<bob@example.org>\r\nDATA\r\n"
            b"Subject: pipe\r\n\r\nx\r\n.\r\nQUIT\r\n")], end="close",
         stores=["bob"], maybe=True, body=b"Subject: pipe\n\nx\n"),
    Case("half close after the final dot: the reply still comes",
         OPEN + [S(b"Subject: half\r\n\r\nx\r\n.\r\n")], end="shut_wr",
         stores=["alice"], body=b"Subject: half\n\nx\n"),
    Case("reset with 2000 replies unread",
         [EHLO, S(b"NOOP\r\n" * 2000)], end="reset"),
]

# -- relay tricks from a client outside relay.networks ----------------------
OUT = "127.0.0.2"
TABLE["relay"] = [
    rcpt_case("remote domain from .2", "x@remote.example", "554 5.7.1",
              source=OUT),
    rcpt_case("remote domain upper case from .2", "x@REMOTE.Example",
              "554 5.7.1", source=OUT),
    rcpt_case("percent hack", "x%remote.example@example.org", "550 5.1.1",
              source=OUT),
    rcpt_case("bang path", "remote.example!x@example.org", "550 5.1.1",
              source=OUT),
    rcpt_case("quoted address in a local part",
              '"x@remote.example"@example.org', "550 5.1.1", source=OUT),
    rcpt_case("source route through the local domain",
              "@example.org:x@remote.example", "554 5.7.1", source=OUT),
    rcpt_case("local domain as a subdomain", "x@example.org.remote.example",
              "554 5.7.1", source=OUT),
    rcpt_case("trailing dot", "x@remote.example.", "501 5.1.3", source=OUT),
    rcpt_case("IPv4 literal from .2", "x@[127.0.0.1]", "554 5.7.1",
              source=OUT),
    rcpt_case("IPv6 literal from .2", "x@[IPv6:::1]", "554 5.7.1",
              source=OUT),
    rcpt_case("general literal with traversal from .2",
              "x@[x:../../../../tmp/%s]" % MARK, "554 5.7.1", source=OUT,
              absent=["/tmp/" + MARK]),
    rcpt_case("postmaster of a remote domain", "postmaster@remote.example",
              "554 5.7.1", source=OUT),
    rcpt_case("localhost", "x@localhost", "554 5.7.1", source=OUT),
    rcpt_case("double at", "x@example.org@remote.example", "501 5.1.3",
              source=OUT),
    Case("no valid recipient: DATA refused, nothing queued",
         [EHLO, MAIL,
          S(line("RCPT TO:<x@remote.example>"), "554 5.7.1"),
          S(line("RCPT TO:<y%remote.example@example.org>"), "550 5.1.1"),
          S(line("DATA"), "503 5.5.1")], source=OUT),
    Case("local mail from .2 goes, the remote recipient does not",
         [EHLO, MAIL, S(line("RCPT TO:<x@remote.example>"), "554 5.7.1"),
          RCPT_ALICE, DATA, S(b"Subject: from .2\r\n\r\nx\r\n.\r\n",
                              "250 2.0.0")],
         source=OUT, stores=["alice"], body=b"Subject: from .2\n\nx\n"),
    Case("envelope lines in the text add no recipient",
         [EHLO, MAIL, S(line("RCPT TO:<carol@remote.example>"), "250 2.1.5"),
          DATA,
          S(b"X-Envelope-To: <mallory@evil.example>\r\n"
            b"X-Envelope-From: <boss@remote.example>\r\n"
            b"Subject: inject\r\n\r\nx\r\n.\r\n", "250 2.0.0")],
         stores=["q:remote.example"],
         body=(b"X-Envelope-To: <mallory@evil.example>\n"
               b"X-Envelope-From: <boss@remote.example>\n"
               b"Subject: inject\n\nx\n"),
         check=check_envelope(["X-Envelope-From: <s@x.example>",
                               "X-Envelope-To: <carol@remote.example>"])),
]

# -- the core issue's other hostile cases, compact ---------------------------
TABLE["core"] = [
    Case("MAIL before EHLO", [S(line("MAIL FROM:<s@x.example>"),
                                "503 5.5.1")]),
    Case("RCPT before MAIL", [EHLO, S(line("RCPT TO:<alice@example.org>"),
                                      "503 5.5.1")]),
    Case("DATA before RCPT", [EHLO, MAIL, S(line("DATA"), "503 5.5.1")]),
    Case("nested MAIL", [EHLO, MAIL, S(line("MAIL FROM:<t@x.example>"),
                                       "503 5.5.1")]),
    Case("unknown command", [S(line("XYZZY"), "500 5.5.1")]),
    Case("empty line", [S(CRLF, "500 5.5.1")]),
    Case("EXPN, TURN, ETRN", [EHLO, S(b"EXPN staff\r\nTURN\r\nETRN x\r\n",
                                      "502 5.5.1", "502 5.5.1",
                                      "502 5.5.1")]),
    Case("VRFY reveals nothing", [EHLO, S(line("VRFY alice"), "252 2.5.2"),
                                  S(line("VRFY nobody"), "252 2.5.2")]),
    Case("DATA with an argument", [EHLO, MAIL, RCPT_ALICE,
                                   S(line("DATA x"), "501 5.5.4")]),
    Case("MAIL without brackets", [EHLO, S(line("MAIL FROM:s@x.example"),
                                           "501 5.1.7")]),
    Case("MAIL TO:", [EHLO, S(line("MAIL TO:<s@x.example>"), "501 5.5.4")]),
    Case("unknown MAIL parameter", [EHLO, S(line(
        "MAIL FROM:<s@x.example> FOO=BAR"), "555 5.5.4")]),
    Case("unknown RCPT parameter", [EHLO, MAIL, S(line(
        "RCPT TO:<alice@example.org> FOO=BAR"), "555 5.5.4")]),
    Case("bad DSN parameter", [EHLO, MAIL, S(line(
        "RCPT TO:<alice@example.org> NOTIFY=NEVER,SUCCESS"), "501 5.5.4")]),
    Case("null recipient", [EHLO, MAIL, S(line("RCPT TO:<>"), "501 5.1.3")]),
    rcpt_case("unknown local user", "nobody@example.org", "550 5.1.1"),
    rcpt_case("postmaster without a domain", "PostMaster", "250 2.1.5"),
    Case("RSET ends the transaction", [EHLO, MAIL, RCPT_ALICE,
                                       S(line("RSET"), "250 2.0.0"),
                                       S(line("DATA"), "503 5.5.1")]),
    Case("EHLO ends the transaction", [EHLO, MAIL, RCPT_ALICE, EHLO,
                                       S(line("DATA"), "503 5.5.1")]),
    Case("pipelined: three commands, three replies in order",
         [S(b"EHLO x.example\r\nNOOP\r\nRCPT TO:<alice@example.org>\r\n"
            b"MAIL FROM:<>\r\nRCPT TO:<postmaster>\r\n",
            "250", "250 2.0.0", "503 5.5.1", "250 2.1.0", "250 2.1.5")]),
    Case("commands in DATA are text",
         OPEN + [S(b"QUIT\r\nRSET\r\nMAIL FROM:<x@y>\r\n.\r\n", "250 2.0.0")],
         stores=["alice"], body=b"QUIT\nRSET\nMAIL FROM:<x@y>\n"),
]


def snapshot(top):
    """Every file ("f") and directory ("d") below top, by relative path."""
    out = {}
    for dirpath, dirs, names in os.walk(top):
        for n in dirs:
            out[os.path.relpath(os.path.join(dirpath, n), top)] = "d"
        for n in names:
            out[os.path.relpath(os.path.join(dirpath, n), top)] = "f"
    return out


class HostileTable(unittest.TestCase):
    """One test per group of rows; each row is a subTest."""

    def start_daemon(self):
        old = os.environ.get("E2E_TMPDIR")
        os.environ["E2E_TMPDIR"] = self.jail
        try:
            d = Daemon(max_message_size=MAX_SIZE, users=USERS,
                       relay_networks=["127.0.0.1/32"]).start()
        finally:
            if old is None:
                del os.environ["E2E_TMPDIR"]
            else:
                os.environ["E2E_TMPDIR"] = old
        self.droot = os.path.relpath(d.root, self.jail)
        return d

    def run_group(self, group):
        self.jail = tempfile.mkdtemp(prefix="pollsmtpd-jail-",
                                     dir=os.environ.get("E2E_TMPDIR"))
        dead = []
        d = self.start_daemon()
        try:
            for case in TABLE[group]:
                with self.subTest(case=case.name):
                    if not d.alive():
                        # A previous row killed it: say so there, and go on
                        # with a fresh daemon for the rest.
                        dead.append(d)
                        d = self.start_daemon()
                    self.run_case(d, case)
        finally:
            try:
                d.stop()
            finally:
                for old in dead:
                    old.stop(remove=False)
        shutil.rmtree(self.jail, ignore_errors=True)

    # -- one row -----------------------------------------------------------
    def run_case(self, d, case):
        before = snapshot(self.jail)
        c = Client(("127.0.0.1", d.port), source=case.source)
        try:
            if not case.early:
                c.greeting = c.expect(220)
            for i, (data, expected) in enumerate(case.steps):
                self.run_step(c, case, i, data, expected)
            self.run_end(c, case)
        finally:
            c.close()
        self.assertServes(d, case)
        after = snapshot(self.jail)
        if case.maybe:
            # The message may be stored after the client left; wait until
            # the tree is still, then judge it.
            deadline = time.monotonic() + 2 * SLOW
            while time.monotonic() < deadline:
                time.sleep(0.2)
                again = snapshot(self.jail)
                if again == after:
                    break
                after = again
        self.assertDisk(d, case, before, after)

    def run_step(self, c, case, i, data, expected):
        sender = None
        if data:
            if len(data) > 64 * 1024:
                sender = c.send_background(data)
            else:
                c.send(data)
        got = []
        try:
            for _ in expected:
                r = c.reply()
                got.append((r.code, r.enhanced))
        except (OSError, ConnectionError, AssertionError) as e:
            got.append(repr(e))
        if sender is not None:
            sender.join(IO_TIMEOUT)
        self.assertEqual(got, expected, "%s: step %d (%r...)" % (
            case.name, i, data[:60]))

    def run_end(self, c, case):
        if case.end == "noop":
            r = c.cmd("NOOP")
            self.assertEqual((r.code, r.enhanced), (250, "2.0.0"),
                             "%s: a reply came that the table does not "
                             "expect (or NOOP failed): %r" % (case.name, r))
            c.expect_ok("QUIT", 221, "2.0.0")
            self.assertTrue(c.closed(), "%s: open after QUIT" % case.name)
            self.assertEqual(c.buf, b"", case.name)
        elif case.end == "closed":
            self.assertTrue(c.closed(), "%s: server did not close"
                            % case.name)
            self.assertEqual(c.buf, b"", "%s: bytes after the last reply"
                             % case.name)
        elif case.end == "quiet":
            self.assertTrue(c.nothing_more(0.3), "%s: unexpected bytes %r"
                            % (case.name, c.buf[:200]))
        elif case.end == "refused":
            data, eof = self.read_until_quiet(c)
            self.assertTrue(data or eof, "%s: no answer and no close"
                            % case.name)
            codes = [l[:3] for l in data.split(b"\r\n") if l]
            if case.early and codes[:1] == [b"220"]:
                codes = codes[1:]
            taken = [x for x in codes if x in (b"250", b"251", b"354")]
            self.assertFalse(taken, "%s: commands were taken: %r"
                             % (case.name, data[-600:]))
        elif case.end == "close":
            pass
        elif case.end == "reset":
            c.abort()
        elif case.end == "shut_wr":
            c.sock.shutdown(socket.SHUT_WR)
            r = c.reply()
            self.assertEqual((r.code, r.enhanced), (250, "2.0.0"),
                             "%s: %r" % (case.name, r))
            self.assertTrue(c.closed(), "%s: not closed after the client's"
                            " FIN" % case.name)
            self.assertEqual(c.buf, b"", case.name)
        else:
            raise ValueError(case.end)

    @staticmethod
    def read_until_quiet(c, quiet=0.5):
        """What the server sends until it closes or is quiet a moment,
        and whether it closed."""
        data, c.buf = c.buf, b""
        eof = False
        c.sock.settimeout(quiet * SLOW)
        deadline = time.monotonic() + 5 * SLOW
        try:
            while time.monotonic() < deadline:
                chunk = c.sock.recv(65536)
                if not chunk:
                    eof = True
                    break
                data += chunk
        except socket.timeout:
            pass
        except ConnectionResetError:
            eof = True
        return data, eof

    def assertServes(self, d, case):
        self.assertTrue(d.alive(), "%s: daemon died; stderr:\n%s"
                        % (case.name, d.log_tail()))
        with d.client() as p:
            p.expect_ok("NOOP", 250, "2.0.0")

    # -- the disk ----------------------------------------------------------
    def place_of(self, rel):
        """"alice" for root/alice/new/NAME, "q:DOMAIN" for
        root/.OTHER_SERVERS/DOMAIN/NAME, else None."""
        parts = rel.split(os.sep)
        root = self.droot.split(os.sep)
        if parts[:len(root)] != root:
            return None
        parts = parts[len(root):]
        if len(parts) == 3 and parts[0] in USERS and parts[1] == "new":
            return parts[0]
        if (len(parts) == 3 and parts[0] == ".OTHER_SERVERS" and
                not parts[1].startswith(".")):
            return "q:" + parts[1]
        return None

    def assertDisk(self, d, case, before, after):
        name = case.name
        gone = sorted(set(before) - set(after))
        self.assertEqual(gone, [], "%s: paths vanished" % name)
        new = sorted(set(after) - set(before))
        # Directories a row may make: a queued domain's own and error/.
        qroot = os.path.join(self.droot, ".OTHER_SERVERS")
        allowed_dirs = set()
        for place in case.stores:
            if place.startswith("q:"):
                dd = os.path.join(qroot, place[2:])
                allowed_dirs.update([dd, os.path.join(dd, "error")])
        files = collections.Counter()
        stored = []
        for rel in new:
            if after[rel] == "d":
                self.assertIn(rel, allowed_dirs,
                              "%s: unexpected directory" % name)
                continue
            place = self.place_of(rel)
            self.assertIsNotNone(place, "%s: unexpected file %s"
                                 % (name, rel))
            files[place] += 1
            with open(os.path.join(self.jail, rel), "rb") as f:
                stored.append((place, f.read()))
        want = collections.Counter(case.stores)
        if case.maybe and not files:
            want = collections.Counter()
        self.assertEqual(dict(files), dict(want),
                         "%s: new files %r" % (name, new))
        for place, data in stored:
            head = (b"X-Envelope-From: <" if place.startswith("q:")
                    else b"Return-Path: <")
            self.assertTrue(data.startswith(head), "%s: %r" % (name,
                                                                 data[:200]))
            self.assertIn(b" (pollsmtpd) with ", data, name)
            if case.body is not None:
                self.assertTrue(data.endswith(b"\n" + case.body),
                                "%s: stored text is not the message: "
                                "...%r" % (name, data[-200:]))
        if case.check:
            case.check(self, case, stored)
        # The standing rule: files only where mail belongs.
        for rel, kind in after.items():
            if kind == "f" and rel.startswith(self.droot + os.sep) and \
                    not is_lock_file(rel, self.droot):
                self.assertIsNotNone(self.place_of(rel),
                                     "%s: file %s" % (name, rel))
        for path in case.absent:
            self.assertFalse(os.path.lexists(path), "%s: %s exists"
                             % (name, path))


def _make_test(group):
    def test(self):
        self.run_group(group)
    test.__doc__ = "hostile table: %s (%d rows)" % (group,
                                                   len(TABLE[group]))
    return test


for _group in TABLE:
    setattr(HostileTable, "test_" + _group.replace(" ", "_"),
            _make_test(_group))


if __name__ == "__main__":
    unittest.main()
