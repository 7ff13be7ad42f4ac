"""test_startup - what start-up does before it serves, seen from outside.

- A symbolic link where a mailbox belongs (ROOT/alice -> elsewhere) stops
  a start as root with exit status 71 and a message naming it; nothing
  outside the tree changes owner or gets a directory.
- A second daemon on a running instance's configuration fails (75, "is
  locked") and leaves the running one's tmp/ files alone; a start cleans
  only the tmp/ files of its own host name.
- A host name too long for Maildir file names is refused by -t and by
  start (78), named by its FILE:LINE.
- -t finds what start-up would refuse (root or a missing user or group, a
  Maildir root that cannot be made, the log file's or the pid file's
  directory missing), each at the key's FILE:LINE, and prints one line on
  success.
- The pid file: locked while the daemon runs, gone (or, where the
  unprivileged daemon cannot remove it, empty) after it stops, removed
  by a start that fails after writing it; logrotate's postrotate signals
  only a live pollsmtpd.
- A detached start writes its start-up records to log.file too.
- On a host without IPv6 (a network namespace with it turned off, as in
  a container) the packaged pair of listeners, 127.0.0.1 and [::1],
  starts on IPv4 with a warning naming [::1]; a configuration of IPv6
  listeners only still fails (71), and so does an IPv6 address this
  host lacks while it has IPv6.
"""

import fcntl
import json
import os
import pwd
import re
import shutil
import signal
import socket
import subprocess
import tempfile
import time
import unittest

from harness import (HOSTNAME, SLOW, START_TIMEOUT, STOP_TIMEOUT, VALGRIND,
                     Daemon, conf_string, daemon_path, daemon_user,
                     free_port, running)

EX_OK, EX_NOUSER, EX_OSERR, EX_CANTCREAT, EX_TEMPFAIL, EX_CONFIG = \
    0, 67, 71, 73, 75, 78
ROOT_ONLY = unittest.skipUnless(os.getuid() == 0, "needs root")


def wait_until(predicate, timeout=5.0):
    """Poll predicate until true or timeout (scaled); its last value."""
    deadline = time.monotonic() + timeout * SLOW
    while True:
        v = predicate()
        if v or time.monotonic() > deadline:
            return v
        time.sleep(0.02)


def listening(port):
    try:
        socket.create_connection(("127.0.0.1", port), timeout=1).close()
        return True
    except OSError:
        return False


def command(args):
    cmd = [daemon_path()] + args
    if VALGRIND:
        cmd = ["valgrind", "-q", "--error-exitcode=99", "--leak-check=full",
               "--errors-for-leak-kinds=definite"] + cmd
    return cmd


def run(args, timeout=30):
    return subprocess.run(command(args), stdin=subprocess.DEVNULL,
                          stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                          timeout=timeout * SLOW)


class Setup(unittest.TestCase):
    """A configuration in a fresh directory, written the harness's way."""

    def setUp(self):
        self.d = Daemon()
        self.d.dir = tempfile.mkdtemp(prefix="pollsmtpd-startup-",
                                      dir=os.environ.get("E2E_TMPDIR") or None)
        os.chmod(self.d.dir, 0o755)
        self.addCleanup(shutil.rmtree, self.d.dir, True)
        self.d.port = free_port()
        self.pid_path = os.path.join(self.d.dir, "pollsmtpd.pid")

    def write_conf(self, edit=None):
        """The harness's configuration, each line passed through edit."""
        text = self.d.config_text()
        if edit is not None:
            text = "\n".join(edit(line) for line in text.split("\n"))
        with open(self.d.conf_path, "w") as f:
            f.write(text)
        return self.d.conf_path

    def line_of(self, needle):
        with open(self.d.conf_path) as f:
            for n, line in enumerate(f, 1):
                if needle in line:
                    return n
        raise ValueError(needle)

    def assert_at(self, err, needle, key, words):
        """err holds "CONF:LINE: key: ...words..." for the line of needle."""
        line = self.line_of(needle)
        self.assertRegex(err, r"(?m)^%s:%d: %s: .*%s" % (
            re.escape(self.d.conf_path), line, re.escape(key), words))

    def start_detached(self):
        """pollsmtpd without -f: returns when the parent has exited, its
        output in p.stderr. (A file, not a pipe: under valgrind the
        daemon keeps a copy of its standard error for valgrind's own
        reports, so a pipe would stay open as long as it runs.)"""
        out = os.path.join(self.d.dir, "start.out")
        with open(out, "wb") as f:
            p = subprocess.run(command(["-c", self.d.conf_path]),
                               stdin=subprocess.DEVNULL, stdout=f, stderr=f,
                               timeout=START_TIMEOUT, cwd=self.d.dir)
        with open(out, "rb") as f:
            p.stderr = f.read()
        return p

    def daemon_pid(self):
        with open(self.pid_path) as f:
            return int(f.read().strip())

    def stop_pid(self, pid):
        os.kill(pid, signal.SIGTERM)
        self.assertTrue(wait_until(lambda: not running(pid), STOP_TIMEOUT),
                        "pollsmtpd %d did not stop on SIGTERM" % pid)


class SymlinkInTree(Setup):
    @ROOT_ONLY
    def test_symlinked_mailbox_refused_outside_untouched(self):
        outside = os.path.join(self.d.dir, "outside")
        os.mkdir(outside, 0o755)
        for sub in ("tmp", "new", "cur"):
            os.mkdir(os.path.join(outside, sub), 0o755)
        os.mkdir(self.d.root, 0o700)
        os.symlink(outside, os.path.join(self.d.root, "alice"))
        before = sorted((n, os.lstat(os.path.join(outside, n)).st_uid)
                        for n in os.listdir(outside))
        self.write_conf()
        p = run(["-f", "-c", self.d.conf_path])
        err = p.stderr.decode("utf-8", "replace")
        self.assertEqual(p.returncode, EX_OSERR, err)
        self.assertIn("%s/alice: a symbolic link" % self.d.root, err)
        self.assertIn("nothing outside", err)
        self.assertEqual(os.lstat(outside).st_uid, 0)
        self.assertEqual(sorted((n, os.lstat(os.path.join(outside, n)).st_uid)
                                for n in os.listdir(outside)), before)
        self.assertFalse(listening(self.d.port))

    @ROOT_ONLY
    def test_symlinked_queue_domain_refused(self):
        outside = os.path.join(self.d.dir, "outside")
        os.mkdir(outside, 0o755)
        os.makedirs(os.path.join(self.d.root, ".OTHER_SERVERS"))
        os.symlink(outside, os.path.join(self.d.root, ".OTHER_SERVERS",
                                         "evil.example"))
        self.write_conf()
        p = run(["-f", "-c", self.d.conf_path])
        err = p.stderr.decode("utf-8", "replace")
        self.assertEqual(p.returncode, EX_OSERR, err)
        self.assertIn(".OTHER_SERVERS/evil.example: a symbolic link", err)
        self.assertEqual(os.lstat(outside).st_uid, 0)
        self.assertEqual(os.listdir(outside), [])


class SecondDaemon(unittest.TestCase):
    def test_second_daemon_fails_and_cleans_nothing(self):
        with Daemon() as first:
            inflight = os.path.join(first.maildir("alice", "tmp"),
                                    "1700000000.INFLIGHT.%s.0" % HOSTNAME)
            with open(inflight, "wb") as f:
                f.write(b"a letter being written\n")
            p = run(["-f", "-c", first.conf_path])
            err = p.stderr.decode("utf-8", "replace")
            self.assertEqual(p.returncode, EX_TEMPFAIL, err)
            self.assertIn("is locked: another pollsmtpd serves host %s"
                          % HOSTNAME, err)
            self.assertTrue(os.path.exists(inflight))
            # The first one serves on.
            with first.client() as c:
                c.expect_ok("EHLO client.test.example", 250)

    def test_start_cleans_only_its_own_host_files(self):
        d = Daemon()
        d.start()
        d.stop(remove=False)
        self.addCleanup(shutil.rmtree, d.dir, True)
        tmp = d.maildir("alice", "tmp")
        mine = os.path.join(tmp, "1700000000.MINE.%s.0" % HOSTNAME)
        theirs = os.path.join(tmp, "1700000000.THEIRS.mx2.test.example.0")
        for path in (mine, theirs):
            with open(path, "wb") as f:
                f.write(b"x\n")
        log = open(d.log_path, "ab")
        proc = subprocess.Popen(command(["-f", "-c", d.conf_path]),
                                stdin=subprocess.DEVNULL, stdout=log,
                                stderr=log, cwd=d.dir)
        log.close()
        try:
            self.assertTrue(wait_until(lambda: listening(d.port)
                                       or proc.poll() is not None,
                                       START_TIMEOUT), d.log_tail())
            self.assertIsNone(proc.poll(), d.log_tail())
            # Cleaning follows the bind: wait for it, then look.
            self.assertTrue(wait_until(lambda: "removed 1 stale file "
                                       "from tmp/" in d.log(),
                                       START_TIMEOUT), d.log_tail())
            self.assertFalse(os.path.exists(mine))
            self.assertTrue(os.path.exists(theirs))
        finally:
            proc.send_signal(signal.SIGTERM)
            self.assertEqual(proc.wait(STOP_TIMEOUT), 0, d.log_tail())


class HostnameLength(Setup):
    def test_long_hostname_refused_by_check_and_start(self):
        self.d.opts["hostname"] = "h" * 63 + "." + "x" * 63 + "." + \
            "y" * 63 + "." + "z" * 39          # 231 characters
        self.assertEqual(len(self.d.opts["hostname"]), 231)
        self.write_conf()
        p = run(["-t", "-c", self.d.conf_path])
        err = p.stderr.decode("utf-8", "replace")
        self.assertEqual(p.returncode, EX_CONFIG, err)
        self.assert_at(err, "hostname =", "hostname",
                       "too long for Maildir file names")
        p = run(["-f", "-c", self.d.conf_path])
        err = p.stderr.decode("utf-8", "replace")
        self.assertEqual(p.returncode, EX_CONFIG, err)
        self.assertIn("too long for Maildir file names", err)
        self.assertFalse(os.path.exists(self.d.root))


class Check(Setup):
    def check_bad(self, edit, needle, key, words, status=EX_CONFIG):
        self.write_conf(edit)
        p = run(["-t", "-c", self.d.conf_path])
        err = p.stderr.decode("utf-8", "replace")
        self.assertEqual(p.returncode, status, err)
        self.assert_at(err, needle, key, words)
        self.assertEqual(p.stdout, b"")
        return err

    def test_success_is_one_line(self):
        self.write_conf()
        p = run(["-t", "-c", self.d.conf_path])
        self.assertEqual(p.returncode, EX_OK, p.stderr)
        self.assertEqual(p.stdout.decode(),
                         "pollsmtpd: configuration file %s test is "
                         "successful\n" % self.d.conf_path)
        self.assertEqual(p.stderr, b"")
        # Checking made nothing.
        self.assertFalse(os.path.exists(self.d.root))

    def test_root_user_refused(self):
        self.check_bad(lambda l: '  user = "root";' if "user =" in l else l,
                       "user =", "server.user", "refusing to run as root")

    def test_missing_user_and_group(self):
        self.check_bad(lambda l: '  user = "no-such-user-x";'
                       if "user =" in l else l,
                       "user =", "server.user", "no such user")
        self.check_bad(lambda l: '  group = "no-such-group-x";'
                       if "group =" in l else l,
                       "group =", "server.group", "no such group")

    def test_maildir_that_cannot_be_made(self):
        for path, words in (("/proc/pollsmtpd-test", "cannot be made"),
                            ("/nonexistent/dir/deep",
                             "parent /nonexistent/dir does not exist")):
            with self.subTest(path=path):
                self.check_bad(lambda l: ('    path = %s;' % conf_string(path))
                               if "path =" in l else l, "path =",
                               "application.maildir.path", re.escape(words))

    def test_log_dir_missing(self):
        log = os.path.join(self.d.dir, "no-such-dir", "pollsmtpd.log")
        self.check_bad(lambda l: '  file = %s;' % conf_string(log)
                       if "  file =" in l else l, "  file =", "log.file",
                       "the directory .*no-such-dir of the log file")

    def test_pid_dir_missing(self):
        pid = os.path.join(self.d.dir, "no-such-dir", "pollsmtpd.pid")
        self.check_bad(lambda l: '  pid_file = %s;' % conf_string(pid)
                       if "pid_file =" in l else l, "pid_file =",
                       "server.pid_file",
                       "the directory .*no-such-dir of the pid file")

    def test_host_bits_are_a_warning(self):
        self.write_conf(lambda l: '  networks = [ "10.0.0.1/8" ];'
                        if "networks =" in l else l)
        p = run(["-t", "-c", self.d.conf_path])
        err = p.stderr.decode("utf-8", "replace")
        self.assertEqual(p.returncode, EX_OK, err)
        self.assertRegex(err, r"(?m)^%s:%d: warning: relay\.networks\[0\]: "
                         r'"10\.0\.0\.1/8" has host bits set: taken as '
                         r"10\.0\.0\.0/8$" % (re.escape(self.d.conf_path),
                                              self.line_of("networks =")))
        self.assertIn(b"test is successful", p.stdout)


class PidFile(Setup):
    def configure(self, pid_dir=None, log_file=None):
        if pid_dir is not None:
            self.pid_path = os.path.join(pid_dir, "pollsmtpd.pid")
        pid = self.pid_path
        log = log_file or os.path.join(self.d.dir, "pollsmtpd.log")
        self.log_file = log

        def edit(line):
            if "pid_file =" in line:
                return "  pid_file = %s;" % conf_string(pid)
            if "  file =" in line:
                return "  file = %s;" % conf_string(log)
            return line
        return self.write_conf(edit)

    def assert_locked(self, path):
        with open(path) as f:
            with self.assertRaises(BlockingIOError):
                fcntl.flock(f, fcntl.LOCK_SH | fcntl.LOCK_NB)

    def start(self):
        p = self.start_detached()
        self.assertEqual(p.returncode, EX_OK, p.stderr)
        pid = self.daemon_pid()
        self.addCleanup(lambda: running(pid) and os.kill(pid, signal.SIGKILL))
        self.assertTrue(running(pid))
        return pid

    def read_log(self):
        try:
            with open(self.log_file, "rb") as f:
                return f.read().decode("utf-8", "replace")
        except OSError:
            return ""

    def test_pid_file_goes_at_exit(self):
        # The daemon's user may write the directory: the file goes.
        pid_dir = os.path.join(self.d.dir, "run")
        os.mkdir(pid_dir, 0o755)
        if os.getuid() == 0:
            pw = pwd.getpwnam(daemon_user()[0])
            os.chown(pid_dir, pw.pw_uid, pw.pw_gid)
        self.configure(pid_dir=pid_dir)
        pid = self.start()
        self.assert_locked(self.pid_path)
        self.stop_pid(pid)
        self.assertFalse(os.path.exists(self.pid_path))

    @ROOT_ONLY
    def test_pid_file_emptied_where_it_cannot_go(self):
        # A root-owned directory: after dropping root the daemon cannot
        # remove the file; it leaves it empty, and unlocked.
        self.configure()
        pid = self.start()
        self.assert_locked(self.pid_path)
        self.assertTrue(wait_until(lambda: "it will be emptied at exit"
                                   in self.read_log()), self.read_log())
        self.stop_pid(pid)
        self.assertEqual(os.path.getsize(self.pid_path), 0)

    def test_failed_start_removes_pid_file(self):
        # The logger cannot open log.file (a dangling link into nowhere):
        # the start fails after the pid file was written.
        log = os.path.join(self.d.dir, "dangling.log")
        os.symlink(os.path.join(self.d.dir, "nowhere", "x.log"), log)
        self.configure(log_file=log)
        p = self.start_detached()
        self.assertEqual(p.returncode, EX_CANTCREAT, p.stderr)
        self.assertIn(b"cannot start the logger", p.stderr)
        self.assertFalse(os.path.exists(self.pid_path))
        self.assertFalse(listening(self.d.port))

    def test_detached_start_logs_to_the_file(self):
        self.configure()
        pid = self.start()
        want = ["listening on 127.0.0.1:%d" % self.d.port, "started (pid %d)"
                % pid]
        if os.getuid() == 0:
            want.append("running as %s" % daemon_user()[0])
        self.assertTrue(wait_until(lambda: all(w in self.read_log()
                                               for w in want)),
                        self.read_log())
        self.stop_pid(pid)

    def postrotate(self):
        """The postrotate script of the built logrotate file, for our pid
        file."""
        top = os.path.dirname(os.path.dirname(os.path.dirname(
            daemon_path())))
        path = os.path.join(top, "etc", "logrotate.d", "pollsmtpd")
        if not os.path.exists(path):
            self.skipTest("%s is not built" % path)
        with open(path) as f:
            text = f.read()
        script = text.split("postrotate", 1)[1].split("endscript", 1)[0]
        baked = re.search(r"-F (\S+)", script).group(1)
        return script.replace(baked, self.pid_path)

    @unittest.skipIf(VALGRIND, "under valgrind the daemon is not named "
                     "pollsmtpd")
    def test_postrotate_signals_only_pollsmtpd(self):
        if shutil.which("pkill") is None:
            self.skipTest("pkill (procps) is not installed")
        self.configure()
        script = self.postrotate()
        # A stale pid file naming another process: it must live on.
        other = subprocess.Popen(["sleep", "60"])
        self.addCleanup(other.kill)
        with open(self.pid_path, "w") as f:
            f.write("%d\n" % other.pid)
        subprocess.run(["sh", "-c", script], timeout=20, check=True)
        self.assertIsNone(other.poll())
        os.unlink(self.pid_path)
        # A running daemon gets its SIGHUP and reopens its log.
        pid = self.start()
        subprocess.run(["sh", "-c", script], timeout=20, check=True)
        self.assertTrue(wait_until(lambda: "reopening the log file"
                                   in self.read_log()), self.read_log())
        self.assertTrue(running(pid))
        self.stop_pid(pid)
        self.assertIsNone(other.poll())


# Run inside a fresh network namespace: loopback up, IPv6 turned off,
# the daemon started in the foreground; what a client sees, as JSON.
NO_IPV6_CHILD = r"""
import json, os, socket, subprocess, sys, time
cmd, port, out, slow = json.loads(sys.argv[1])
subprocess.run(["ip", "link", "set", "lo", "up"], check=True)
with open("/proc/sys/net/ipv6/conf/all/disable_ipv6", "w") as f:
    f.write("1")
with open("/proc/net/if_inet6") as f:
    assert f.read() == "", "IPv6 addresses left"
with open(out, "wb") as f:
    p = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=f, stderr=f)
res = {"banner": None, "status": None}
deadline = time.monotonic() + 20 * slow
while time.monotonic() < deadline and p.poll() is None:
    try:
        s = socket.create_connection(("127.0.0.1", port), timeout=5 * slow)
    except OSError:
        time.sleep(0.02)
        continue
    res["banner"] = s.recv(512).decode("ascii", "replace")
    s.sendall(b"QUIT\r\n")
    s.recv(512)
    s.close()
    break
if p.poll() is None:
    p.terminate()
res["status"] = p.wait(timeout=20 * slow)
print(json.dumps(res))
"""


@ROOT_ONLY
class NoIPv6Host(Setup):
    def setUp(self):
        super().setUp()
        if shutil.which("unshare") is None or shutil.which("ip") is None:
            self.skipTest("needs unshare (util-linux) and ip (iproute2)")

    def start_without_ipv6(self, listen):
        self.write_conf(lambda line: re.sub(
            r"^(\s*)listen = .*;$",
            lambda m: m.group(1) + "listen = [ %s ];" % ", ".join(
                '"%s"' % a for a in listen), line))
        out = os.path.join(self.d.dir, "netns.out")
        p = subprocess.run(
            ["unshare", "-n", "python3", "-c", NO_IPV6_CHILD,
             json.dumps([command(["-f", "-c", self.d.conf_path]),
                         self.d.port, out, SLOW])],
            stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
            stderr=subprocess.PIPE, timeout=60 * SLOW)
        self.assertEqual(p.returncode, 0, p.stderr.decode())
        with open(out, "rb") as f:
            return json.loads(p.stdout), f.read().decode("utf-8", "replace")

    def test_ipv4_and_ipv6_loopback_starts_on_ipv4(self):
        port = self.d.port
        res, err = self.start_without_ipv6(["127.0.0.1:%d" % port,
                                            "[::1]:%d" % port])
        self.assertIsNotNone(res["banner"], err)
        self.assertTrue(res["banner"].startswith("220 "), res["banner"])
        self.assertIn("not listening on [::1]:%d: this host has no IPv6"
                      % port, err)
        self.assertIn("listening on 127.0.0.1:%d" % port, err)
        self.assertEqual(res["status"], 0, err)

    def test_ipv6_only_still_fails(self):
        res, err = self.start_without_ipv6(["[::1]:%d" % self.d.port])
        self.assertIsNone(res["banner"])
        self.assertEqual(res["status"], EX_OSERR, err)
        self.assertIn("cannot listen on", err)


class MissingIPv6Address(Setup):
    def test_ipv6_address_not_here_fails(self):
        with open("/proc/net/if_inet6") as f:
            if f.read() == "":
                self.skipTest("this host has no IPv6 address")
        port = self.d.port
        self.write_conf(lambda line: re.sub(
            r"^(\s*)listen = .*;$", lambda m: m.group(1) +
            'listen = [ "127.0.0.1:%d", "[2001:db8::25]:%d" ];'
            % (port, port), line))
        p = run(["-f", "-c", self.d.conf_path])
        self.assertEqual(p.returncode, EX_OSERR, p.stderr)
        self.assertIn(b"cannot listen on [2001:db8::25]:%d" % port, p.stderr)


if __name__ == "__main__":
    unittest.main()
