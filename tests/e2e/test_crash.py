"""test_crash - crash consistency: SIGKILL under load loses no 250'd mail.

Twenty client sessions (threads, raw sockets, PIPELINING) send messages
for a bounded time to local users, to remote domains (relay allowed from
127.0.0.1) and to both at once. Every message carries a unique token and
the SHA-256 of its body in its header. Meanwhile the daemon is killed with
SIGKILL at random moments and started again on the same Maildir root and
port; between a kill and the restart stale files are planted in every
tmp/, which the restart must remove.

At the end (after a graceful stop) every file in the tree is read back:
  - every message that got "250 2.0.0 ... queued as ID" is present exactly
    once in each place it belongs (the user's new/, the remote domain's
    queue directory), named after its ID, with the trace headers of that
    ID and the message byte for byte as sent (checksum verified too);
  - every stored file, answered or not, is complete and is exactly one of
    the messages sent (nothing partial, nothing unknown), at most once
    per place;
  - a message whose DATA was never sent, or that got a 4xx/5xx, is
    nowhere;
  - no file is left in any tmp/ or .OTHER_SERVERS/.tmp, none in cur/ or a
    queue's error/;
  - the logger child does not outlive a killed daemon.
The random seed is printed; CRASH_SEED=N repeats a run.
"""

import hashlib
import os
import random
import re
import shutil
import subprocess
import threading
import time
import unittest

from harness import (Client, Daemon, DaemonError, HELO, HOSTNAME, VALGRIND,
                     children_of, running, smtp_data, split_trace)

SESSIONS = 20
LOAD_SECONDS = 8.0
KILLS = 4
SENDER = "load@x.example"
LOCAL_DOMAIN = "example.org"
USERS = ["alice", "bob"]
# Recipient sets, chosen at random per message: local, remote, mixed.
RCPT_SETS = [
    ["alice@example.org"],
    ["bob@example.org"],
    ["alice@example.org", "bob@example.org"],
    ["carol@remote-a.example"],
    ["carol@remote-a.example", "dave@remote-a.example",
     "erin@remote-b.example"],
    ["alice@example.org", "frank@remote-b.example"],
    ["bob@example.org", "alice@example.org", "gina@remote-c.example"],
]
REMOTE_DOMAINS = ["remote-a.example", "remote-b.example", "remote-c.example"]
IO_TIMEOUT = 5
NAME_RE = re.compile(r"^\d+\.([A-Za-z0-9]+)\.%s$" % re.escape(HOSTNAME))
RECEIVED_ID = re.compile(r"^Received: from %s \(\[127\.0\.0\.1\]\) by %s "
                         r"\(pollsmtpd\) with ESMTP id ([A-Za-z0-9]+); "
                         % (re.escape(HELO), re.escape(HOSTNAME)))


# -- the daemon, killed and restarted in place ---------------------------



class CrashDaemon(Daemon):
    """A Daemon that can be SIGKILLed and started again with the same
    configuration, Maildir root and port."""

    def kill9(self):
        """SIGKILL; returns the PIDs of the children it had (the logger)."""
        if self.proc.poll() is not None:
            raise DaemonError("pollsmtpd died on its own (status %d):\n%s"
                              % (self.proc.returncode, self.log_tail()))
        kids = children_of(self.proc.pid)
        self.proc.kill()
        self.proc.wait(10)
        self.proc = None
        return kids

    def restart(self):
        last = ""
        for _attempt in range(20):
            logf = open(self.log_path, "ab")
            try:
                self.proc = subprocess.Popen(
                    self.command(), stdin=subprocess.DEVNULL,
                    stdout=logf, stderr=logf, cwd=self.dir)
            finally:
                logf.close()
            if self._wait_ready():
                return
            last = self.log_tail()
            if self.proc.poll() is None:
                self._kill()
                break
            self.proc = None
            if "in use" not in last:
                break
            time.sleep(0.1)
        raise DaemonError("restart failed:\n%s" % last)


# -- the load client -----------------------------------------------------

class Msg:
    __slots__ = ("token", "rcpts", "text", "state", "msgid", "reply")

    def __init__(self, token, rcpts, text):
        self.token = token
        self.rcpts = rcpts
        self.text = text        # bytes, LF line ends, as it must be stored
        self.state = "unsent"   # unsent | unknown | acked | refused
        self.msgid = None
        self.reply = None


def make_text(rng, token):
    """A message whose header names its token and its body's SHA-256."""
    lines = []
    size = rng.choice([1, 3, 20, 60, 200]) if rng.random() < 0.97 \
        else rng.choice([2000, 6000])        # now and then ~100-400 KB
    for i in range(rng.randint(1, size)):
        kind = rng.random()
        if kind < 0.1:
            line = b"." * rng.randint(1, 3) + token.encode()
        elif kind < 0.15:
            line = b""
        elif kind < 0.2:
            line = "8-bit caf\u00e9 %d" % i
            line = line.encode("utf-8")
        else:
            line = bytes(rng.choice(b"abcdefghijklmnopqrstuvwxyz0123456789 ")
                         for _ in range(rng.randint(0, 70)))
        lines.append(line + b"\n")
    body = b"%s %s\n" % (token.encode(), b"begin") + b"".join(lines) + \
        b"%s end\n" % token.encode()
    head = ("From: <%s>\nSubject: crash %s\nMessage-ID: <%s@x.example>\n"
            "X-Token: %s\nX-Body-SHA256: %s\n\n"
            % (SENDER, token, token, token,
               hashlib.sha256(body).hexdigest())).encode()
    return head + body


class LoadClient(Client):
    """A Client whose socket is closed when the connection is refused."""

    def __init__(self, addr, timeout):
        try:
            super().__init__(addr, timeout=timeout)
        except OSError:
            sock = getattr(self, "sock", None)
            if sock is not None:
                sock.close()
            raise


class Load:
    """SESSIONS threads sending messages until a deadline, reconnecting
    whenever the daemon goes away."""

    def __init__(self, port, seed, seconds):
        self.port = port
        self.seed = seed
        self.deadline = time.monotonic() + seconds
        self.msgs = []
        self.lock = threading.Lock()
        self.errors = []        # unexpected protocol answers (not crashes)
        self.threads = [threading.Thread(target=self._worker, args=(i,),
                                         daemon=True)
                        for i in range(SESSIONS)]

    def start(self):
        for t in self.threads:
            t.start()

    def join(self):
        for t in self.threads:
            t.join(self.deadline - time.monotonic() + 3 * IO_TIMEOUT + 5)
        return not any(t.is_alive() for t in self.threads)

    def _worker(self, n):
        rng = random.Random(self.seed * 1000 + n)
        seq = 0
        while time.monotonic() < self.deadline:
            try:
                c = LoadClient(("127.0.0.1", self.port), IO_TIMEOUT)
            except OSError:
                time.sleep(0.02)      # down for the moment: try again
                continue
            try:
                c.expect(220)
                c.expect_ok("EHLO " + HELO, 250)
                while time.monotonic() < self.deadline:
                    seq += 1
                    token = "T%02dN%06d" % (n, seq)
                    m = Msg(token, rng.choice(RCPT_SETS),
                            make_text(rng, token))
                    with self.lock:
                        self.msgs.append(m)
                    if not self._send(c, m):
                        break
                try:
                    c.cmd("QUIT")
                except Exception:
                    pass
            except Exception:
                pass                  # killed: the next connection goes on
            finally:
                c.close()

    def _send(self, c, m):
        """One pipelined transaction; False when the session must end."""
        cmds = ["MAIL FROM:<%s>" % SENDER] + \
            ["RCPT TO:<%s>" % r for r in m.rcpts] + ["DATA"]
        c.send("".join(x + "\r\n" for x in cmds))
        replies = c.replies(len(cmds))
        codes = [r.code for r in replies]
        if codes != [250] * (len(cmds) - 1) + [354]:
            with self.lock:
                self.errors.append((m.token, [r.text for r in replies]))
            return False
        m.state = "unknown"
        c.send(smtp_data(m.text))
        r = c.reply()
        m.reply = r.text
        if r.code == 250 and r.enhanced == "2.0.0" and r.queued_id():
            m.msgid = r.queued_id()
            m.state = "acked"
            return True
        m.state = "refused"
        with self.lock:
            self.errors.append((m.token, [r.text]))
        return False


# -- reading the tree back -----------------------------------------------

def places(rcpts):
    """{place: expected envelope or Delivered-To} for a recipient list."""
    out = {}
    for r in rcpts:
        local, domain = r.split("@")
        if domain == LOCAL_DOMAIN:
            out.setdefault(("user", local), r)
        else:
            out.setdefault(("queue", domain), [])
            if r not in out[("queue", domain)]:
                out[("queue", domain)].append(r)
    return out


def body_token(problems, where, text):
    """The token of a stored message text, after checking its checksum."""
    head, sep, body = text.partition(b"\n\n")
    if not sep:
        problems.append("%s: no end of header (partial?)" % where)
        return None
    tok = re.search(rb"^X-Token: (\S+)$", head, re.M)
    dig = re.search(rb"^X-Body-SHA256: ([0-9a-f]{64})$", head, re.M)
    if not tok or not dig:
        problems.append("%s: no token or checksum header" % where)
        return None
    if hashlib.sha256(body).hexdigest().encode() != dig.group(1):
        problems.append("%s: body checksum mismatch (%d body bytes; partial?)"
                        % (where, len(body)))
    return tok.group(1).decode()


def parse_local(problems, where, data):
    """-> (msgid, delivered_to, text) or None."""
    try:
        fields, rest = split_trace(data, 3)
    except AssertionError as e:
        problems.append("%s: %s" % (where, e))
        return None
    if fields[0] != "Return-Path: <%s>" % SENDER or \
            not fields[1].startswith("Delivered-To: "):
        problems.append("%s: bad trace headers %r" % (where, fields[:2]))
        return None
    m = RECEIVED_ID.match(fields[2])
    if not m:
        problems.append("%s: bad Received: %r" % (where, fields[2]))
        return None
    return m.group(1), fields[1][len("Delivered-To: "):], rest


def parse_queue(problems, where, data):
    """-> (msgid, [rcpts], text) or None."""
    lines = data.split(b"\n")
    env = []
    i = 0
    while i < len(lines) and lines[i].startswith(b"X-Envelope-"):
        env.append(lines[i].decode("latin-1"))
        i += 1
    if not env or env[0] != "X-Envelope-From: <%s>" % SENDER or \
            not all(e.startswith("X-Envelope-To: <") and e.endswith(">")
                    for e in env[1:]) or len(env) < 2:
        problems.append("%s: bad envelope %r" % (where, env))
        return None
    if i >= len(lines):
        problems.append("%s: ends after the envelope" % where)
        return None
    m = RECEIVED_ID.match(lines[i].decode("latin-1"))
    if not m:
        problems.append("%s: bad Received: %r" % (where, lines[i][:200]))
        return None
    text = b"\n".join(lines[i + 1:])
    return m.group(1), [e[len("X-Envelope-To: <"):-1] for e in env[1:]], text


@unittest.skipIf(VALGRIND, "crash test under valgrind: too slow to mean much")
class CrashConsistency(unittest.TestCase):

    def setUp(self):
        self.seed = int(os.environ.get("CRASH_SEED") or
                        random.SystemRandom().randrange(1, 1 << 30))
        print("CRASH_SEED=%d" % self.seed)
        self.d = CrashDaemon(users=USERS, domains=[LOCAL_DOMAIN],
                             relay_networks=["127.0.0.1/32"], debug=False)
        self.d.start()
        self.passed = False
        self.addCleanup(self._cleanup)

    def _cleanup(self):
        if self.d.proc is not None:
            try:
                self.d.stop(remove=False)
            except DaemonError:
                pass
        if self.passed:
            shutil.rmtree(self.d.dir, ignore_errors=True)
        else:
            print("files kept in %s" % self.d.dir)

    def tmp_dirs(self):
        return [os.path.join(self.d.root, u, "tmp") for u in USERS] + \
            [os.path.join(self.d.queue_dir(), ".tmp")]

    def plant_stale(self, k):
        """Files as a writer killed before its rename would leave them."""
        for i, t in enumerate(self.tmp_dirs()):
            with open(os.path.join(t, "%d.STALE%dX%d.%s.0" % (
                    time.time(), k, i, HOSTNAME)), "wb") as f:
                f.write(b"Return-Path: <x@y>\nhalf a lett")

    def test_sigkill_under_load(self):
        rng = random.Random(self.seed)
        kills = sorted(rng.uniform(0.7, LOAD_SECONDS - 0.8)
                       for _ in range(KILLS))
        load = Load(self.d.port, self.seed, LOAD_SECONDS)
        t0 = time.monotonic()
        load.start()
        orphans = []
        stale_left = []
        restart_times = []
        for k, when in enumerate(kills):
            time.sleep(max(0.0, t0 + when - time.monotonic()))
            kids = self.d.kill9()
            self.plant_stale(k)
            r0 = time.monotonic()
            self.d.restart()
            restart_times.append(time.monotonic() - r0)
            left = [(t, os.listdir(t)) for t in self.tmp_dirs()]
            stale_left += [(t, [n for n in names if "STALE" in n])
                           for t, names in left
                           if any("STALE" in n for n in names)]
            deadline = time.monotonic() + 3
            while any(running(p) for p in kids) and \
                    time.monotonic() < deadline:
                time.sleep(0.05)
            orphans += [p for p in kids if running(p)]
        self.assertTrue(load.join(), "load client threads hang")
        elapsed = time.monotonic() - t0
        self.assertTrue(self.d.alive(), "daemon died on its own:\n%s"
                        % self.d.log_tail())
        self.d.stop(remove=False)        # SIGTERM, exit status 0

        msgs = load.msgs
        by_state = {}
        for m in msgs:
            by_state.setdefault(m.state, []).append(m)
        print("%d messages in %.1f s: %s; kills at %s; restarts took %s"
              % (len(msgs), elapsed,
                 ", ".join("%s %d" % (s, len(v)) for s, v in
                           sorted(by_state.items())),
                 ", ".join("%.2f" % k for k in kills),
                 ", ".join("%.2f" % r for r in restart_times)))
        self.assertEqual(stale_left, [],
                         "tmp/ files not removed by the restart")
        self.assertEqual(orphans, [], "children outlived the killed daemon")
        self.assertEqual(load.errors, [], "unexpected replies (not crashes)")
        acked = by_state.get("acked", [])
        self.assertGreater(len(acked), 300, "too little load to mean much")
        ids = [m.msgid for m in acked]
        self.assertEqual(len(ids), len(set(ids)), "an ID was given twice")

        self.check_tree(msgs)
        self.passed = True

    def check_tree(self, msgs):
        problems = []
        sent = {m.token: m for m in msgs}
        found = {}      # (token, place) -> [(msgid, name, envelope)]
        root = self.d.root

        for t in self.tmp_dirs():
            for n in os.listdir(t):
                problems.append("left in %s: %s" % (t, n))
        for dirpath, dirs, names in os.walk(root):
            rel = os.path.relpath(dirpath, root)
            parts = rel.split(os.sep)
            for n in names:
                where = os.path.join(rel, n)
                with open(os.path.join(dirpath, n), "rb") as f:
                    data = f.read()
                if len(parts) == 2 and parts[0] in USERS and \
                        parts[1] == "new":
                    parsed = parse_local(problems, where, data)
                    place = ("user", parts[0])
                elif len(parts) == 2 and parts[0] == ".OTHER_SERVERS" and \
                        parts[1] in REMOTE_DOMAINS:
                    parsed = parse_queue(problems, where, data)
                    place = ("queue", parts[1])
                elif len(parts) == 2 and parts[1] == "tmp":
                    continue    # reported above
                elif rel == ".OTHER_SERVERS/.tmp":
                    continue
                elif rel == "." and n.startswith(".lock."):
                    continue    # the daemon's lock on the tree
                else:
                    problems.append("unexpected file %s" % where)
                    continue
                if parsed is None:
                    continue
                msgid, env, text = parsed
                nm = NAME_RE.match(n)
                if not nm or nm.group(1) != msgid:
                    problems.append("%s: name does not carry ID %s"
                                    % (where, msgid))
                tok = body_token(problems, where, text)
                if tok is None:
                    continue
                m = sent.get(tok)
                if m is None:
                    problems.append("%s: unknown token %s" % (where, tok))
                    continue
                if text != m.text:
                    problems.append("%s: text of %s differs from what was "
                                    "sent (%d stored, %d sent bytes)"
                                    % (where, tok, len(text), len(m.text)))
                found.setdefault((tok, place), []).append((msgid, n, env))
        for u in USERS:
            for n in os.listdir(os.path.join(root, u, "cur")):
                problems.append("file in %s/cur: %s" % (u, n))
        for dom in REMOTE_DOMAINS:
            err = os.path.join(self.d.queue_dir(dom), "error")
            if os.path.isdir(err):
                for n in os.listdir(err):
                    problems.append("file in %s/error: %s" % (dom, n))

        for (tok, place), copies in found.items():
            m = sent[tok]
            want = places(m.rcpts)
            if place not in want:
                problems.append("%s stored in %r, sent to %r"
                                % (tok, place, m.rcpts))
                continue
            if len(copies) > 1:
                problems.append("%s (%s) is in %r %d times: %r"
                                % (tok, m.state, place, len(copies),
                                   [c[1] for c in copies]))
            for msgid, name, env in copies:
                if place[0] == "user" and env != want[place]:
                    problems.append("%s: Delivered-To %r, expected %r"
                                    % (name, env, want[place]))
                if place[0] == "queue" and env != want[place]:
                    problems.append("%s: envelope %r, expected %r"
                                    % (name, env, want[place]))
                if m.state == "acked" and msgid != m.msgid:
                    problems.append("%s: ID %s, but 250 said %s"
                                    % (name, msgid, m.msgid))
            if m.state in ("unsent", "refused"):
                problems.append("%s (%s, reply %r) is stored in %r"
                                % (tok, m.state, m.reply, place))
        lost = 0
        for m in msgs:
            if m.state != "acked":
                continue
            for place in places(m.rcpts):
                if (m.token, place) not in found:
                    lost += 1
                    if lost <= 20:
                        problems.append("LOST: %s (250 %s) not in %r"
                                        % (m.token, m.msgid, place))
        if lost > 20:
            problems.append("... %d lost copies in all" % lost)
        # Not asserted: a message without a reply may be stored in some of
        # its places only (killed between two renames); its sender retries.
        present = {}
        for tok, place in found:
            present.setdefault(tok, set()).add(place)
        unknown = [m for m in msgs if m.state == "unknown"]
        stored = [m for m in unknown if m.token in present]
        print("of %d messages without a reply, %d were stored, %d of them "
              "in only some of their places"
              % (len(unknown), len(stored),
                 sum(present[m.token] != set(places(m.rcpts))
                     for m in stored)))
        self.assertEqual(problems, [], "\n".join(problems[:60]))


if __name__ == "__main__":
    unittest.main()
