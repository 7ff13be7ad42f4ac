"""test_durability_order - the 250 is written only after the message is
durable, seen in the daemon's system calls.

The daemon runs under `strace -ff -tt -yy` (each process to its own file,
descriptors shown with their paths). For each message, in the daemon's
own trace, these must come in this order:
  1. the copy is created and written in a tmp/ (root/<user>/tmp or
     root/.OTHER_SERVERS/.tmp), its name carrying the message ID;
  2. fsync or fdatasync of that file, after its last write (or a syncfs);
  3. rename/renameat/renameat2 (or link/linkat) of it into the target
     directory (root/<user>/new, root/.OTHER_SERVERS/<domain>);
  4. fsync of a descriptor opened on that target directory;
  5. only then the write/send of "250 2.0.0 ... queued as ID" to the
     client's socket.
Checked for a local user, a remote (queued) recipient, and one message for
two users and a remote domain (every copy must be durable before the 250).
Skipped when strace is missing or ptrace is not permitted. In a build
with --enable-sanitizers the traced daemon runs without LeakSanitizer,
which cannot work under ptrace (see no_leak_check()).
"""

import os
import re
import shutil
import unittest

from harness import (StracedDaemon, VALGRIND, no_leak_check, smtp_data,
                     strace_usable)

SYSCALLS = ("open,openat,openat2,creat,close,mkdir,mkdirat,"
            "write,writev,pwrite64,pwritev,"
            "pwritev2,fsync,fdatasync,syncfs,sync_file_range,rename,renameat,"
            "renameat2,link,linkat,sendto,sendmsg,sendmmsg")
WRITES = ("write", "writev", "pwrite64", "pwritev", "pwritev2")
SENDS = ("write", "writev", "sendto", "sendmsg", "sendmmsg")
RENAMES = ("rename", "renameat", "renameat2", "link", "linkat")
# "PID? HH:MM:SS.uuuuuu name(args) = ret"
LINE = re.compile(r"^(?:\d+\s+)?(\d\d:\d\d:\d\d\.\d+) (\w+)\((.*)\) += (-?\d+)"
                  r"(?:<([^>]*)>)?")
FD_PATH = re.compile(r"\d+<([^>]*)>")
STRING = re.compile(r'"((?:[^"\\]|\\.)*)"')





class TracedDaemon(StracedDaemon):
    """pollsmtpd under strace; stop() signals the daemon itself, so that
    the exit status strace passes on is the daemon's."""

    @property
    def trace_prefix(self):
        return os.path.join(self.dir, "trace")

    def command(self):
        return ["strace", "-ff", "-tt", "-yy", "-s", "256",
                "-o", self.trace_prefix, "-e", "trace=" + SYSCALLS] + \
            no_leak_check() + super().command()


    def traces(self):
        """{pid: [parsed calls]} of every traced process."""
        out = {}
        for n in os.listdir(self.dir):
            if n.startswith("trace."):
                with open(os.path.join(self.dir, n), "rb") as f:
                    text = f.read().decode("latin-1")
                out[int(n.split(".")[1])] = parse_trace(text)
        return out


class Call:
    __slots__ = ("index", "time", "name", "args", "ret", "retpath", "line")

    def __init__(self, index, m, line):
        self.index = index
        self.time, self.name, self.args = m.group(1), m.group(2), m.group(3)
        self.ret = int(m.group(4))
        self.retpath = m.group(5)
        self.line = line

    def fd_paths(self):
        return FD_PATH.findall(self.args)

    def first_path(self):
        p = self.fd_paths()
        return p[0] if p else None

    def strings(self):
        return STRING.findall(self.args)

    def __repr__(self):
        return "#%d %s" % (self.index, self.line[:300])


def parse_trace(text):
    calls = []
    for line in text.splitlines():
        m = LINE.match(line)
        if m:
            calls.append(Call(len(calls), m, line))
    return calls


@unittest.skipIf(VALGRIND, "strace and valgrind do not stack")
class DurabilityOrder(unittest.TestCase):

    @classmethod
    def setUpClass(cls):
        why = strace_usable()
        if why:
            raise unittest.SkipTest(why)

    def setUp(self):
        self.d = TracedDaemon(users=["alice", "bob"], domains=["example.org"],
                              relay_networks=["127.0.0.1/32"], debug=False)
        self.d.start()
        self.passed = False
        self.addCleanup(self._cleanup)

    def _cleanup(self):
        try:
            self.d.stop(remove=False)
        finally:
            if self.passed:
                shutil.rmtree(self.d.dir, ignore_errors=True)
            else:
                print("trace kept in %s" % self.d.dir)

    def send(self, rcpts, text):
        c = self.d.client()
        try:
            c.hello()
            r = c.transaction("s@x.example", rcpts, smtp_data(text))
            self.assertEqual((r.code, r.enhanced), (250, "2.0.0"), r)
            msgid = r.queued_id()
            self.assertTrue(msgid, r)
            c.expect_ok("QUIT", 221, "2.0.0")
        finally:
            c.close()
        return msgid

    def daemon_trace(self, msgid):
        """The calls of the process that sent the 250 for msgid."""
        self.d.stop(remove=False)
        found = []
        for pid, calls in self.d.traces().items():
            for c in calls:
                if c.name in SENDS and any(
                        "250 2.0.0" in s and msgid in s for s in c.strings()):
                    found.append((pid, calls, c))
        self.assertEqual(len(found), 1, "the 250 for %s is not sent once "
                         "in the traces: %r" % (msgid, [f[2] for f in found]))
        return found[0][1], found[0][2]

    def assert_durable_before_250(self, msgid, targets, new_dirs=()):
        """targets: (tmp dir, target dir) relative to root, one a copy;
        new_dirs: directories the message made, whose entries must be
        synced in their parents before the 250 as well."""
        calls, reply = self.daemon_trace(msgid)
        root = os.path.realpath(self.d.root)
        for d in new_dirs:
            with self.subTest(new_dir=d):
                self.assert_new_dir(calls, reply, os.path.join(root, d))
        for tmpdir, dstdir in targets:
            with self.subTest(copy=dstdir):
                self.assert_copy(calls, reply, msgid,
                                 os.path.join(root, tmpdir),
                                 os.path.join(root, dstdir))

    def assert_new_dir(self, calls, reply, path):
        parent, name = os.path.split(path)
        made = [c for c in calls[:reply.index] if c.ret == 0 and (
            (c.name == "mkdirat" and c.first_path() == parent and
             '"%s"' % name in c.args) or
            (c.name == "mkdir" and '"%s"' % path in c.args))]
        self.assertTrue(made, "%s not made before the 250" % path)
        synced = [c for c in calls[made[0].index:reply.index]
                  if c.ret == 0 and (c.name == "syncfs" or (
                      c.name in ("fsync", "fdatasync") and
                      c.first_path() == parent))]
        self.assertTrue(synced, "the new entry %s is not synced in %s "
                        "before the 250" % (name, parent))

    def assert_copy(self, calls, reply, msgid, tmpdir, dstdir):
        def before_reply(pred):
            return [c for c in calls[:reply.index] if pred(c)]

        def in_tmp(path):
            return path is not None and \
                os.path.dirname(path) == tmpdir and msgid in \
                os.path.basename(path)

        trail = "\n".join(repr(c) for c in calls[:reply.index + 1]
                          if msgid in c.line or dstdir in c.line
                          or c is reply)
        # 1. created and written in tmp/ (the descriptor's path is the
        # file's, so writes and fsyncs can be matched by it).
        opens = before_reply(lambda c: c.name in ("open", "openat",
                                                  "openat2", "creat")
                             and c.ret >= 0 and in_tmp(c.retpath))
        self.assertTrue(opens, "no file created in %s for %s before the 250:"
                        "\n%s" % (tmpdir, msgid, trail))
        tmpfile = opens[-1].retpath
        writes = before_reply(lambda c: c.name in WRITES and c.ret > 0
                              and c.first_path() == tmpfile)
        self.assertTrue(writes, "no write to %s before the 250:\n%s"
                        % (tmpfile, trail))
        # 2. synced after its last write.
        syncs = before_reply(
            lambda c: c.index > writes[-1].index and c.ret == 0 and
            ((c.name in ("fsync", "fdatasync")
              and c.first_path() == tmpfile) or c.name == "syncfs"))
        self.assertTrue(syncs, "no fsync of %s after its last write and "
                        "before the 250:\n%s" % (tmpfile, trail))
        # 3. moved into the target directory after the sync.
        renames = before_reply(
            lambda c: c.name in RENAMES and c.ret == 0 and
            c.index > syncs[0].index and os.path.basename(tmpfile) in
            c.args and dstdir + ">" in c.args)
        if not renames:
            early = [c for c in calls if c.name in RENAMES and
                     os.path.basename(tmpfile) in c.args]
            self.fail("no rename of %s into %s between its fsync and the "
                      "250 (renames of it: %r):\n%s"
                      % (tmpfile, dstdir, early, trail))
        # 4. the target directory synced after the rename.
        dirsyncs = before_reply(
            lambda c: c.index > renames[0].index and c.ret == 0 and
            ((c.name in ("fsync", "fdatasync")
              and c.first_path() == dstdir) or c.name == "syncfs"))
        self.assertTrue(dirsyncs, "no fsync of the directory %s between the "
                        "rename and the 250:\n%s" % (dstdir, trail))
        # 5. the 250 goes to a socket.
        self.assertTrue(reply.first_path() and (
            reply.first_path().startswith("TCP") or
            "socket" in reply.first_path()), reply)
        self.assertLess(dirsyncs[0].index, reply.index)

    def test_local_user(self):
        msgid = self.send(["alice@example.org"], b"Subject: local\n\nx\n")
        self.assert_durable_before_250(msgid, [("alice/tmp", "alice/new")])
        self.passed = True

    def test_remote_recipient(self):
        msgid = self.send(["carol@remote.example"], b"Subject: remote\n\nx\n")
        self.assert_durable_before_250(
            msgid, [(".OTHER_SERVERS/.tmp", ".OTHER_SERVERS/remote.example")],
            new_dirs=[".OTHER_SERVERS/remote.example"])
        self.passed = True

    def test_every_copy_durable_before_250(self):
        msgid = self.send(["alice@example.org", "bob@example.org",
                           "carol@remote.example"],
                          b"Subject: three copies\n\n" + b"y" * 100000 + b"\n")
        self.assert_durable_before_250(
            msgid, [("alice/tmp", "alice/new"), ("bob/tmp", "bob/new"),
                    (".OTHER_SERVERS/.tmp", ".OTHER_SERVERS/remote.example")])
        self.passed = True


if __name__ == "__main__":
    unittest.main()
