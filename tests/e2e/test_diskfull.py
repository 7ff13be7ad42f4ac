"""test_diskfull - disk full and I/O errors: never a 250, never a partial
file, and the daemon keeps serving and recovers.

Disk full (needs root: the Maildir root is on a small tmpfs mounted for
the test and always unmounted afterwards; skipped with the reason when
that cannot be done):
  - a message bigger than the free space gets 452 4.3.1, leaves no file
    and gives every block back (no descriptor of a removed file is kept
    open); NOOP and a small message still work in the same session;
    after the file system grows (remount) the same message gets 250 and
    is stored byte for byte;
  - a message for two users and a remote domain where one copy fits and
    the next does not gets 452 4.3.1 and leaves no copy anywhere; after a
    filler file is removed it is stored in all three places;
  - with no inode left, local and queued mail gets 452 4.3.1, nothing is
    left, and one freed inode is enough to store again.

I/O errors (no tmpfs needed):
  - a user's new/ replaced by a file while the daemon runs: 451 4.3.0 and
    no copy left for any recipient of that message (the copy already
    renamed into another user's new/ is taken back); other users still
    get mail; once new/ is a directory again, the next message for that
    user is stored (no restart needed);
  - with strace (skipped without it or without ptrace), faults injected
    into the daemon's system calls: EIO from the file's fsync, EIO from
    the new/ directory's fsync (after the rename: the placed file must be
    removed again), EIO from the rename, ENOSPC from the write of a copy,
    ENOSPC from the spool while the text streams in (answered at the
    final dot), EIO from the copy of the text into a copy: 451 4.3.0
    (452 4.3.1 for ENOSPC), nothing left, and the next message is stored.
    In a build with --enable-sanitizers the traced daemon runs without
    LeakSanitizer, which cannot work under ptrace.
"""

import errno
import os
import subprocess
import tempfile
import unittest

from harness import (Daemon, DaemonTestCase, StracedDaemon, VALGRIND,
                     give_to_daemon_user, no_leak_check, smtp_data,
                     strace_usable)

SENDER = "s@x.example"
MB = 1024 * 1024


def message(size, tag):
    """A message of about size bytes (LF line ends), distinct per tag."""
    head = ("From: <%s>\nSubject: %s\n\n" % (SENDER, tag)).encode()
    line = (tag + " " + "x" * 70)[:72].encode() + b"\n"
    n = max(1, (size - len(head)) // len(line))
    return head + line * n


def free_bytes(path):
    st = os.statvfs(path)
    return st.f_bavail * st.f_frsize


def free_inodes(path):
    return os.statvfs(path).f_favail


def run(cmd):
    return subprocess.run(cmd, stdout=subprocess.PIPE,
                          stderr=subprocess.STDOUT, timeout=30)


class RootedDaemon(Daemon):
    """A Daemon whose Maildir root is a given directory (on a tmpfs)."""

    def __init__(self, root, **opts):
        super().__init__(**opts)
        self._root = root

    @property
    def root(self):
        return self._root


class TmpfsCase(DaemonTestCase):
    """A daemon whose Maildir root is MNT/root on a fresh tmpfs MNT."""

    tmpfs_opts = "size=4m"

    def setUp(self):
        if os.geteuid() != 0:
            self.skipTest("mounting a tmpfs needs root")
        self.mnt = tempfile.mkdtemp(prefix="pollsmtpd-tmpfs-",
                                    dir=os.environ.get("E2E_TMPDIR"))
        r = run(["mount", "-t", "tmpfs", "-o", self.tmpfs_opts + ",mode=0700",
                 "pollsmtpd-test", self.mnt])
        if r.returncode != 0:
            os.rmdir(self.mnt)
            self.skipTest("mount -t tmpfs failed: %s"
                          % r.stdout.decode("latin-1", "replace").strip())
        # Cleanups run last first: the daemon (which holds directories
        # open) stops before the unmount.
        self.addCleanup(self._unmount)
        self.d = RootedDaemon(os.path.join(self.mnt, "root"),
                              relay_networks=["127.0.0.1/32"])
        self.d.start()
        self.addCleanup(self._stop_daemon)

    def _unmount(self):
        r = run(["umount", self.mnt])
        if r.returncode != 0:
            run(["umount", "-l", self.mnt])
        os.rmdir(self.mnt)

    def remount(self, opts):
        r = run(["mount", "-o", "remount," + opts, self.mnt])
        self.assertEqual(r.returncode, 0, r.stdout)

    def filler(self, nbytes):
        """A file outside the Maildir root taking nbytes of the space."""
        path = os.path.join(self.mnt, "filler")
        with open(path, "wb") as f:
            chunk = b"f" * MB
            left = nbytes
            while left > 0:
                f.write(chunk[:min(left, MB)])
                left -= MB
        return path

    def assertNothingStored(self):
        self.assertEqual(self.d.all_files(), [],
                         "files left by a refused message")

    def send(self, c, rcpts, text):
        """A transaction; with no room even for the message text to come
        (no inode for the spool), DATA itself gets the 452."""
        c.expect_ok("MAIL FROM:<%s>" % SENDER, 250, "2.1.0")
        for r in rcpts:
            c.expect_ok("RCPT TO:<%s>" % r, 250, "2.1.5")
        c.send(b"DATA\r\n")
        r = c.reply()
        if r.code == 354:
            c.send(smtp_data(text))
            return c.reply()
        c.expect_ok("RSET", 250, "2.0.0")
        return r

    def assertQueued(self, domain, msgid, rcpts, text):
        names = [n for n in self.d.queue_files(domain) if ".%s." % msgid in n]
        self.assertEqual(len(names), 1, self.d.queue_files(domain))
        data = self.d.read_queue(domain, names[0])
        env = b"X-Envelope-From: <%s>\n" % SENDER.encode() + b"".join(
            b"X-Envelope-To: <%s>\n" % r.encode() for r in rcpts)
        self.assertTrue(data.startswith(env), data[:300])
        rest = data[len(env):]
        received, _, body = rest.partition(b"\n")
        self.assertIn(b" id %s; " % msgid.encode(), received)
        self.assertEqual(body, text)


class DiskFull(TmpfsCase):
    tmpfs_opts = "size=2m"

    def test_bigger_than_free_space_452_then_250_after_growth(self):
        text = message(3 * MB, "big")
        before = free_bytes(self.mnt)
        c = self.client()
        c.hello()
        r = self.send(c, ["alice@example.org"], text)
        self.assertEqual((r.code, r.enhanced), (452, "4.3.1"), r)
        self.assertNothingStored()
        self.assertEqual(free_bytes(self.mnt), before,
                         "space of the removed file is not given back "
                         "(a descriptor left open?)")
        # The session and the daemon go on.
        c.expect_ok("NOOP", 250, "2.0.0")
        small = message(2000, "small")
        r = self.send(c, ["bob@example.org"], small)
        self.assertEqual((r.code, r.enhanced), (250, "2.0.0"), r)
        self.assertDelivered("bob", r.queued_id(), SENDER, "bob@example.org",
                             small)
        # Room again: the same message is now taken, whole.
        self.remount("size=16m")
        r = self.send(c, ["alice@example.org"], text)
        self.assertEqual((r.code, r.enhanced), (250, "2.0.0"), r)
        self.assertDelivered("alice", r.queued_id(), SENDER,
                             "alice@example.org", text)
        self.assertEqual(self.d.files("alice", "tmp"), [])
        self.assertEqual(len(self.d.files("alice")), 1)


class OneCopyFits(TmpfsCase):
    tmpfs_opts = "size=8m"

    def test_all_or_nothing_when_the_second_copy_fails(self):
        rcpts = ["alice@example.org", "bob@example.org",
                 "carol@remote.example"]
        # Make the queue directories exist, so that the test measures
        # files only (directories made on the way may stay).
        c = self.client()
        c.hello()
        r = self.send(c, ["carol@remote.example"], message(100, "warm"))
        self.assertEqual(r.code, 250, r)
        warm = self.d.all_files()
        filler = self.filler(free_bytes(self.mnt) - 3 * MB // 2)
        text = message(MB, "copies")
        before = free_bytes(self.mnt)
        self.assertGreater(before, len(text) + 64 * 1024)
        self.assertLess(before, 2 * len(text))
        r = self.send(c, rcpts, text)
        self.assertEqual((r.code, r.enhanced), (452, "4.3.1"), r)
        self.assertEqual(self.d.all_files(), warm, "a copy was left")
        self.assertEqual(free_bytes(self.mnt), before)
        # A small message still fits.
        r = self.send(c, ["alice@example.org"], message(500, "small"))
        self.assertEqual((r.code, r.enhanced), (250, "2.0.0"), r)
        os.unlink(filler)
        r = self.send(c, rcpts, text)
        self.assertEqual((r.code, r.enhanced), (250, "2.0.0"), r)
        msgid = r.queued_id()
        self.assertDelivered("alice", msgid, SENDER, rcpts[0], text)
        self.assertDelivered("bob", msgid, SENDER, rcpts[1], text)
        self.assertQueued("remote.example", msgid, rcpts[2:], text)
        for u in ("alice", "bob"):
            self.assertEqual(self.d.files(u, "tmp"), [])
        self.assertEqual(os.listdir(os.path.join(self.d.queue_dir(),
                                                 ".tmp")), [])


class NoInodes(TmpfsCase):
    tmpfs_opts = "size=8m,nr_inodes=48"

    def test_inode_exhaustion_452(self):
        fill = os.path.join(self.mnt, "fill")
        os.mkdir(fill)
        made = []
        while True:
            p = os.path.join(fill, str(len(made)))
            try:
                open(p, "wb").close()
            except OSError as e:
                self.assertEqual(e.errno, errno.ENOSPC, e)
                break
            made.append(p)
            self.assertLess(len(made), 100, "nr_inodes not honoured")
        self.assertEqual(free_inodes(self.mnt), 0)
        c = self.client()
        c.hello()
        text = message(300, "noinode")
        for rcpts in (["alice@example.org"], ["carol@remote.example"],
                      ["bob@example.org", "dave@other.example"]):
            with self.subTest(rcpts=rcpts):
                r = self.send(c, rcpts, text)
                self.assertEqual((r.code, r.enhanced), (452, "4.3.1"), r)
                self.assertNothingStored()
        c.expect_ok("NOOP", 250, "2.0.0")
        # Two inodes back: the message text's spool and one local copy.
        os.unlink(made.pop())
        os.unlink(made.pop())
        r = self.send(c, ["alice@example.org"], text)
        self.assertEqual((r.code, r.enhanced), (250, "2.0.0"), r)
        self.assertDelivered("alice", r.queued_id(), SENDER,
                             "alice@example.org", text)


class BrokenMaildir(DaemonTestCase):

    def replace_new_by_file(self, user):
        path = self.d.maildir(user, "new")
        os.rmdir(path)
        with open(path, "w") as f:
            f.write("not a directory\n")

    def test_new_replaced_by_file_451_nothing_left(self):
        self.replace_new_by_file("alice")
        c = self.client()
        c.hello()
        text = message(5000, "broken")
        # bob first: his copy is renamed into place before alice's fails,
        # and must be taken back.
        for rcpts in (["alice@example.org"],
                      ["bob@example.org", "alice@example.org"],
                      ["carol@remote.example", "alice@example.org"]):
            with self.subTest(rcpts=rcpts):
                before = self.d.all_files()
                r = c.transaction(SENDER, rcpts, smtp_data(text))
                self.assertEqual((r.code, r.enhanced), (451, "4.3.0"), r)
                after = self.d.all_files()
                self.assertEqual([p for p in after if p not in before], [],
                                 "files left by a refused message")
                self.assertEqual(self.d.files("bob"), [])
                self.assertEqual(self.d.files("alice", "tmp"), [])
                self.assertEqual(self.d.files("bob", "tmp"), [])
                self.assertEqual(self.d.queue_files("remote.example"), [])
        with open(self.d.maildir("alice", "new")) as f:
            self.assertEqual(f.read(), "not a directory\n")
        # bob is not affected.
        r = c.transaction(SENDER, ["bob@example.org"], smtp_data(text))
        self.assertEqual((r.code, r.enhanced), (250, "2.0.0"), r)
        self.assertDelivered("bob", r.queued_id(), SENDER, "bob@example.org",
                             text)
        self.assertDaemonAlive()

    def test_recovers_when_new_is_made_again(self):
        self.replace_new_by_file("alice")
        c = self.client()
        c.hello()
        text = message(500, "repaired")
        r = c.transaction(SENDER, ["alice@example.org"], smtp_data(text))
        self.assertEqual((r.code, r.enhanced), (451, "4.3.0"), r)
        path = self.d.maildir("alice", "new")
        os.unlink(path)
        # As the administrator would: the directory, owned by the daemon.
        os.mkdir(path, 0o700)
        give_to_daemon_user(path)
        r = c.transaction(SENDER, ["alice@example.org"], smtp_data(text))
        self.assertEqual((r.code, r.enhanced), (250, "2.0.0"), r)
        self.assertDelivered("alice", r.queued_id(), SENDER,
                             "alice@example.org", text)


# -- faults injected with strace -------------------------------------------




class FaultyDaemon(StracedDaemon):
    """pollsmtpd under strace with one fault injected. The Maildir tree
    (and the queue directory of remote.example) is made before start, so
    the daemon's first fsync or file write is a delivery's.
    strace_args(root) gives the injection options."""

    def __init__(self, strace_args, **opts):
        super().__init__(**opts)
        self.strace_args = strace_args

    @property
    def trace_path(self):
        return os.path.join(self.dir, "trace")

    def command(self):
        for u in self.opts["users"]:
            for sub in ("tmp", "new", "cur"):
                os.makedirs(os.path.join(self.root, u, sub), exist_ok=True)
        for sub in (".tmp", "remote.example/error"):
            os.makedirs(os.path.join(self.root, ".OTHER_SERVERS", sub),
                        exist_ok=True)
        # No -f: the fault is for the daemon, not for its logger child.
        return ["strace", "-yy", "-o", self.trace_path] + \
            self.strace_args(os.path.realpath(self.root)) + \
            no_leak_check() + super().command()

    def injected(self):
        """Trace lines of the injected calls."""
        with open(self.trace_path, "rb") as f:
            text = f.read().decode("latin-1")
        return [l for l in text.splitlines() if "(INJECTED)" in l]



@unittest.skipIf(VALGRIND, "strace and valgrind do not stack")
class InjectedFaults(DaemonTestCase):
    """Each test: the first message fails with the expected reply and
    leaves nothing; the trace shows the fault hit the intended call; the
    second message is stored."""

    RCPTS = ["bob@example.org", "alice@example.org", "carol@remote.example"]

    @classmethod
    def setUpClass(cls):
        why = strace_usable(inject=True)
        if why:
            raise unittest.SkipTest(why)

    def setUp(self):
        pass

    def start(self, strace_args):
        self.d = FaultyDaemon(strace_args, relay_networks=["127.0.0.1/32"],
                              debug=False)
        self.d.start()
        self.addCleanup(self._stop_daemon)

    def fault(self, code, enhanced, hit):
        """First message refused with code/enhanced, nothing left, the
        injected call matching the regular expression hit; then a 250."""
        before = self.d.all_files()
        c = self.client()
        c.hello()
        text = message(20000, "fault")
        r = c.transaction(SENDER, self.RCPTS, smtp_data(text))
        self.assertEqual((r.code, r.enhanced), (code, enhanced), r)
        self.assertEqual([p for p in self.d.all_files() if p not in before],
                         [], "files left by a refused message")
        r = c.transaction(SENDER, self.RCPTS, smtp_data(text))
        self.assertEqual((r.code, r.enhanced), (250, "2.0.0"), r)
        msgid = r.queued_id()
        self.assertDelivered("alice", msgid, SENDER, "alice@example.org",
                             text)
        self.assertDelivered("bob", msgid, SENDER, "bob@example.org", text)
        self.assertEqual(len(self.d.queue_files("remote.example")), 1)
        c.expect_ok("QUIT", 221, "2.0.0")
        c.close()
        self.d.stop(remove=False)
        injected = self.d.injected()
        self.assertEqual(len(injected), 1, injected)
        self.assertRegex(injected[0], hit)
        self.d.stop()

    def test_file_fsync_eio_451(self):
        self.start(lambda root: ["-e", "trace=fsync,fdatasync",
                                 "-e", "inject=fsync,fdatasync:error=EIO:"
                                 "when=1"])
        self.fault(451, "4.3.0",
                   r"^(\d+ +)?f(data)?sync\(\d+</[^>]*/tmp/\d+\.")

    def test_directory_fsync_eio_451(self):
        # Only calls on alice's new/ are counted: its first fsync is the
        # one after the rename, which must be undone (bob's copy too).
        self.start(lambda root: ["-P", os.path.join(root, "alice", "new"),
                                 "-e", "trace=fsync,fdatasync,syncfs",
                                 "-e", "inject=fsync,fdatasync,syncfs:"
                                 "error=EIO:when=1"])
        self.fault(451, "4.3.0",
                   r"^(\d+ +)?(fsync|fdatasync|syncfs)\(\d+</[^>]*/alice/new>")

    def test_rename_eio_451(self):
        # alice's copy is the second renamed: bob's must be taken back.
        self.start(lambda root: ["-P", os.path.join(root, "alice", "tmp"),
                                 "-e", "trace=rename,renameat,renameat2,"
                                 "link,linkat",
                                 "-e", "inject=rename,renameat,renameat2,"
                                 "link,linkat:error=EIO:when=1"])
        self.fault(451, "4.3.0",
                   r"^(\d+ +)?(rename|link)\w*\(\d+</[^>]*/alice/tmp>")

    def test_write_enospc_452(self):
        # The copies' headers: writev() into a tmp/ file.
        self.start(lambda root: ["-e", "trace=writev",
                                 "-e", "inject=writev:error=ENOSPC:when=1"])
        self.fault(452, "4.3.1",
                   r"^(\d+ +)?writev\(\d+</[^>]*/tmp/\d+\.")

    def test_spool_write_enospc_452_at_the_dot(self):
        # The text as it streams in: the spool's first pwrite64() fails
        # (the 20 kB message is over its 16 kB window). The client is
        # read to the end and told at the final dot, not cut off.
        self.start(lambda root: ["-e", "trace=pwrite64",
                                 "-e", "inject=pwrite64:error=ENOSPC:when=1"])
        self.fault(452, "4.3.1",
                   r"^(\d+ +)?pwrite64\(\d+</[^>]*/\.OTHER_SERVERS/\.tmp/")

    def test_spool_copy_eio_451(self):
        # The text copied from the spool into a copy: copy_file_range()
        # fails with EIO: 451, no copy left anywhere.
        self.start(lambda root: ["-e", "trace=copy_file_range",
                                 "-e", "inject=copy_file_range:error=EIO:"
                                 "when=1"])
        self.fault(451, "4.3.0", r"^(\d+ +)?copy_file_range\(\d+</")


if __name__ == "__main__":
    unittest.main()
