"""test_config - the command line: -t checks a configuration and reports
each problem as FILE:LINE: with exit status 78; -V, -h; a bad option is a
usage error (64). Nothing here listens on a port."""

import os
import re
import shutil
import subprocess
import tempfile
import unittest

from harness import (SLOW, VALGRIND, conf_string, daemon_path, daemon_user,
                     free_port)

EX_OK, EX_USAGE, EX_CONFIG = 0, 64, 78


def run(args, timeout=20):
    cmd = [daemon_path()] + args
    if VALGRIND:
        cmd = ["valgrind", "-q", "--error-exitcode=99", "--leak-check=full",
               "--errors-for-leak-kinds=definite"] + cmd
    return subprocess.run(cmd, stdin=subprocess.DEVNULL,
                          stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                          timeout=timeout * SLOW)


def good_lines(root):
    """A complete, valid configuration as a list of lines (-t checks the
    user, so it is the one the daemon would run as: nobody under root)."""
    me, group = daemon_user()
    return [
        '# a good configuration',
        'hostname = "mx.test.example";',
        'application = {',
        '  debug = false;',
        '  maildir = {',
        '    path = %s;' % conf_string(root),
        '    fsync = true;',
        '  };',
        '};',
        'server = {',
        '  listen = [ "127.0.0.1:2525", "[::1]:2525" ];',
        '  max_connections = 100;',
        '  max_message_size = 1048576;',
        '  max_recipients = 50;',
        '  command_timeout = 300;',
        '  data_timeout = 600;',
        '  user = %s;' % conf_string(me),
        '  group = %s;' % conf_string(group),
        '  pid_file = %s;' % conf_string(os.path.join(os.path.dirname(root),
                                                     "p.pid")),
        '};',
        'local = {',
        '  domains = [ "example.org", "example.net" ];',
        '  users = [ "alice", "bob" ];',
        '  postmaster = "alice";',
        '};',
        'relay = {',
        '  networks = [ "127.0.0.0/8", "::1/128" ];',
        '};',
        'log = {',
        '  file = "";',
        '};',
    ]


class Config(unittest.TestCase):

    def setUp(self):
        self.dir = tempfile.mkdtemp(prefix="pollsmtpd-conf-",
                                    dir=os.environ.get("E2E_TMPDIR") or None)
        self.addCleanup(shutil.rmtree, self.dir, True)
        self.root = os.path.join(self.dir, "root")

    def write(self, lines, name="test.conf"):
        path = os.path.join(self.dir, name)
        with open(path, "w") as f:
            f.write("\n".join(lines) + "\n")
        return path

    def edited(self, find, replace):
        """The good configuration with the line holding find replaced by
        replace (a list of lines); returns (lines, line number of the
        first replacement line)."""
        lines = good_lines(self.root)
        for i, l in enumerate(lines):
            if find in l:
                return lines[:i] + replace + lines[i + 1:], i + 1
        raise ValueError(find)

    def check_bad(self, lines, lineno, word=None):
        path = self.write(lines)
        p = run(["-t", "-c", path])
        err = p.stderr.decode("utf-8", "replace")
        self.assertEqual(p.returncode, EX_CONFIG, err)
        if lineno is None:
            self.assertRegex(err, r"(?m)^%s:\d+: " % re.escape(path))
        else:
            self.assertRegex(err, r"(?m)^%s:%d: " % (re.escape(path),
                                                      lineno))
        if word:
            self.assertRegex(err.lower(), word)
        return err

    def test_good_config(self):
        path = self.write(good_lines(self.root))
        p = run(["-t", "-c", path])
        self.assertEqual(p.returncode, EX_OK, p.stderr)
        self.assertNotIn(path.encode() + b":", p.stderr)

    def test_minimal_config_defaults(self):
        # The default log.file's directory need not exist here: "" is set.
        me, group = daemon_user()
        path = self.write([
            'application = { maildir = { path = %s; }; };'
            % conf_string(self.root),
            'server = { user = %s; group = %s; };'
            % (conf_string(me), conf_string(group)),
            'log = { file = ""; };'])
        p = run(["-t", "-c", path])
        self.assertEqual(p.returncode, EX_OK, p.stderr)

    def test_unknown_top_level_key(self):
        lines = good_lines(self.root)
        lines.insert(5, 'colour = "blue";')
        # inserted inside application.maildir: an unknown nested key
        self.check_bad(lines, 6, "colour")
        lines = good_lines(self.root) + ['bogus = 1;']
        self.check_bad(lines, len(lines), "bogus")

    def test_unknown_nested_key(self):
        lines, n = self.edited("max_recipients", [
            '  max_recipients = 50;', '  max_rcpts = 50;'])
        self.check_bad(lines, n + 1, "max_rcpts")

    def test_wrong_types(self):
        cases = [("max_recipients", '  max_recipients = "ten";'),
                 ("debug", '  debug = "yes";'),
                 ("hostname", 'hostname = 42;'),
                 ("users", '  users = "alice";'),
                 ("fsync", '    fsync = 1.5;')]
        for key, bad in cases:
            with self.subTest(key=key):
                lines, n = self.edited(key, [bad])
                self.check_bad(lines, n)

    def test_out_of_range(self):
        for key, bad in [("max_recipients", "  max_recipients = 0;"),
                         ("command_timeout", "  command_timeout = -5;"),
                         ("max_connections", "  max_connections = 0;")]:
            with self.subTest(key=key):
                lines, n = self.edited(key, [bad])
                self.check_bad(lines, n)

    def test_bad_listen_address(self):
        for bad in ["127.0.0.1:notaport", "999.0.0.1:25",
                    "127.0.0.1:70000", "localhost:25", "[::1:25",
                    "::1:25"]:
            with self.subTest(listen=bad):
                lines, n = self.edited("listen", [
                    '  listen = [ "127.0.0.1:2525", %s ];'
                    % conf_string(bad)])
                self.check_bad(lines, n)

    def test_relative_maildir_path(self):
        lines, n = self.edited("path = ", ['    path = "relative/dir";'])
        self.check_bad(lines, n, "path|maildir")

    def test_empty_maildir_path(self):
        # An absent key takes its default (design.md: every key has one);
        # an empty path is missing and an error.
        lines, n = self.edited("path = ", ['    path = "";'])
        self.check_bad(lines, n, "path|maildir")

    def test_postmaster_not_a_user(self):
        lines, n = self.edited("postmaster", ['  postmaster = "carol";'])
        self.check_bad(lines, n, "postmaster")

    def test_bad_user_name(self):
        lines, n = self.edited("users", ['  users = [ "alice", "../x" ];'])
        self.check_bad(lines, n)

    def test_bad_relay_network(self):
        for bad in ["127.0.0.1/33", "10.0.0.0/x", "::1/129", "nonsense"]:
            with self.subTest(network=bad):
                lines, n = self.edited("networks", [
                    '  networks = [ %s ];' % conf_string(bad)])
                self.check_bad(lines, n)

    def test_syntax_error(self):
        lines, n = self.edited("max_connections",
                               ['  max_connections = ;'])
        self.check_bad(lines, n)

    def test_every_problem_reported(self):
        lines = good_lines(self.root)
        lines[11] = '  max_connections = "many";'          # line 12
        lines[23] = '  postmaster = "carol";'              # line 24
        lines.append('bogus = true;')                      # last line
        err = self.check_bad(lines, 12)
        path = os.path.join(self.dir, "test.conf")
        self.assertRegex(err, r"(?m)^%s:24: " % re.escape(path))
        self.assertRegex(err, r"(?m)^%s:%d: " % (re.escape(path),
                                                 len(lines)))

    def test_missing_file(self):
        path = os.path.join(self.dir, "no-such.conf")
        p = run(["-t", "-c", path])
        self.assertNotEqual(p.returncode, 0)
        self.assertIn(path.encode(), p.stderr)

    def test_serving_with_bad_config_exits_78(self):
        lines = good_lines(self.root) + ['bogus = 1;']
        path = self.write(lines)
        p = run(["-f", "-c", path])
        self.assertEqual(p.returncode, EX_CONFIG, p.stderr)
        self.assertRegex(p.stderr.decode(), r"(?m)^%s:%d: " % (
            re.escape(path), len(lines)))

    @unittest.skipUnless(os.getuid() == 0, "needs root")
    def test_refuses_to_serve_as_root(self):
        for user, group in (("root", "root"), ("nobody", "root")):
            with self.subTest(user=user, group=group):
                lines, _ = self.edited("user =", ['  user = "%s";' % user])
                lines = [('  group = "%s";' % group) if "group =" in l
                         else l for l in lines]
                lines = [('  listen = [ "127.0.0.1:%d" ];' % free_port())
                         if "listen =" in l else l for l in lines]
                path = self.write(lines)
                p = run(["-f", "-c", path])
                self.assertEqual(p.returncode, EX_CONFIG, p.stderr)
                self.assertIn(b"refusing to run", p.stderr)
                # Nothing was made: it stopped before the Maildir tree.
                self.assertFalse(os.path.exists(self.root))

    def test_version(self):
        p = run(["-V"])
        self.assertEqual(p.returncode, EX_OK, p.stderr)
        out = (p.stdout + p.stderr).decode()
        self.assertRegex(out, r"pollsmtpd.*\b\d+\.\d+\.\d+\b")

    def test_help(self):
        p = run(["-h"])
        self.assertEqual(p.returncode, EX_OK, p.stderr)
        out = (p.stdout + p.stderr).decode().lower()
        self.assertIn("usage", out)
        self.assertIn("-c", out)

    def test_bad_option(self):
        for args in (["-Z"], ["--no-such-option"], ["-c"]):
            with self.subTest(args=args):
                p = run(args)
                self.assertEqual(p.returncode, EX_USAGE, p.stderr)
                self.assertNotEqual(p.stderr, b"")


if __name__ == "__main__":
    unittest.main()
