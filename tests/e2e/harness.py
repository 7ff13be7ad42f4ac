"""harness - run the built pollsmtpd for end-to-end tests and talk to it.

Daemon starts `$POLLSMTPD -f -c CONF` in a fresh temporary directory with a
configuration written for the test (loopback only, a free port, Maildir
root inside the temporary directory, log on stderr captured to a file),
waits until it accepts connections, and on stop() sends SIGTERM, insists on
exit status 0 and removes the directory.

Client is a raw-socket SMTP client that reads whole replies ("NNN-..."
continuation lines up to the final "NNN " line). Every socket operation
has a timeout, so no test can hang.

With E2E_VALGRIND=1 the daemon runs under valgrind (errors and definite
leaks make it exit 99, which stop() reports) and every timeout is longer.
"""

import os
import pwd
import grp
import re
import resource
import shutil
import signal
import socket
import subprocess
import tempfile
import threading
import time
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
HOSTNAME = "mx.test.example"
HELO = "client.test.example"
VALGRIND = os.environ.get("E2E_VALGRIND", "") == "1"
# Timeouts scale up under valgrind, which is 20-50 times slower.
SLOW = 10 if VALGRIND else 1
IO_TIMEOUT = 10 * SLOW
START_TIMEOUT = 60 if VALGRIND else 10
STOP_TIMEOUT = 60 if VALGRIND else 10


def daemon_path():
    path = os.environ.get("POLLSMTPD")
    if not path:
        path = os.path.join(HERE, "..", "..", "src", "pollsmtpd", "pollsmtpd")
    return os.path.abspath(path)


def free_port(host="127.0.0.1", family=socket.AF_INET):
    """A port that was free a moment ago (bind to port 0, ask, close)."""
    s = socket.socket(family, socket.SOCK_STREAM)
    try:
        s.bind((host, 0))
        return s.getsockname()[1]
    finally:
        s.close()


def have_ipv6_loopback():
    try:
        s = socket.socket(socket.AF_INET6, socket.SOCK_STREAM)
    except OSError:
        return False
    try:
        s.bind(("::1", 0))
        return True
    except OSError:
        return False
    finally:
        s.close()


def daemon_user():
    """The server.user and server.group of test configurations: ourselves,
    or, when the tests run as root, nobody (the daemon refuses to run as
    root and drops to this user after start-up)."""
    if os.getuid() != 0:
        return (pwd.getpwuid(os.getuid()).pw_name,
                grp.getgrgid(os.getgid()).gr_name)
    pw = pwd.getpwnam("nobody")
    return pw.pw_name, grp.getgrgid(pw.pw_gid).gr_name


def give_to_daemon_user(path):
    """Let the daemon, once it has dropped root, write in path."""
    if os.getuid() == 0:
        pw = pwd.getpwnam(daemon_user()[0])
        os.chown(path, pw.pw_uid, pw.pw_gid)


def is_lock_file(path, root):
    """True for root/.lock.HOST, the lock a daemon holds on its tree for
    its host name (pollsmtpd(8)): the one file of the tree that is no
    letter. path may be relative to root's parent or absolute, as root."""
    return os.path.dirname(os.path.normpath(path)) == \
        os.path.normpath(root) and \
        os.path.basename(path).startswith(".lock.")


def conf_string(value):
    """A libconfig string literal."""
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


def conf_list(values):
    return "[ " + ", ".join(conf_string(v) for v in values) + " ]"


class DaemonError(AssertionError):
    pass


class Daemon:
    """One pollsmtpd process with its own configuration and Maildir root."""

    def __init__(self, **opts):
        # opts: any of the settings below, to override the test defaults.
        self.opts = dict(
            hostname=HOSTNAME,
            debug=True,
            fsync=True,
            max_connections=1024,
            max_message_size=10485760,
            max_recipients=100,
            command_timeout=300,
            data_timeout=600,
            domains=["example.org"],
            users=["alice", "bob"],
            postmaster="alice",
            relay_networks=["127.0.0.1/32"],
            ipv6=False,
            log_file="",
            max_connections_per_ip=None,
            nofile=None,
            # delivery: the delivery group, {key: libconfig literal};
            # None: the agent is off (no test may reach a real name
            # server or a remote mail exchanger).
            delivery=None,
            # address: the IPv4 loopback address it listens on; root: a
            # Maildir tree of the test's (several daemons may share one),
            # instead of one in the daemon's own directory.
            address="127.0.0.1",
            root=None,
        )
        unknown = set(opts) - set(self.opts)
        if unknown:
            raise ValueError("unknown daemon options: %s" % sorted(unknown))
        self.opts.update(opts)
        self.proc = None
        self.dir = None
        self.port = None
        self.port6 = None
        self.exit_status = None

    # -- paths --------------------------------------------------------
    @property
    def root(self):
        if self.opts["root"] is not None:
            return self.opts["root"]
        return os.path.join(self.dir, "root")

    @property
    def conf_path(self):
        return os.path.join(self.dir, "pollsmtpd.conf")

    @property
    def log_path(self):
        return os.path.join(self.dir, "stderr.log")

    def maildir(self, user, sub="new"):
        return os.path.join(self.root, user, sub)

    def files(self, user, sub="new"):
        """Sorted names of the files in root/<user>/<sub>."""
        d = self.maildir(user, sub)
        if not os.path.isdir(d):
            return []
        return sorted(os.listdir(d))

    def read(self, user, name, sub="new"):
        with open(os.path.join(self.maildir(user, sub), name), "rb") as f:
            return f.read()

    def queue_dir(self, domain=None):
        d = os.path.join(self.root, ".OTHER_SERVERS")
        return os.path.join(d, domain) if domain else d

    def queue_files(self, domain):
        """Regular files queued for a remote domain (error/ left out)."""
        d = self.queue_dir(domain)
        if not os.path.isdir(d):
            return []
        return sorted(n for n in os.listdir(d)
                      if os.path.isfile(os.path.join(d, n)))

    def queue_domains(self):
        d = self.queue_dir()
        if not os.path.isdir(d):
            return []
        return sorted(n for n in os.listdir(d) if n != ".tmp")

    def read_queue(self, domain, name):
        with open(os.path.join(self.queue_dir(domain), name), "rb") as f:
            return f.read()

    def all_files(self):
        """Every regular file below root, as paths relative to root (the
        daemon's lock, root/.lock.HOST, left out: it holds no mail)."""
        out = []
        if not self.dir or not os.path.isdir(self.root):
            return out
        for dirpath, _dirs, names in os.walk(self.root):
            for n in names:
                p = os.path.join(dirpath, n)
                if not is_lock_file(p, self.root):
                    out.append(os.path.relpath(p, self.root))
        return sorted(out)

    def log(self):
        try:
            with open(self.log_path, "rb") as f:
                return f.read().decode("utf-8", "replace")
        except OSError:
            return ""

    def log_tail(self, n=40):
        lines = self.log().splitlines()
        return "\n".join(lines[-n:])

    # -- configuration ------------------------------------------------
    def config_text(self):
        o = self.opts
        me, group = daemon_user()
        listen = ["%s:%d" % (self.opts["address"], self.port)]
        if self.port6:
            listen.append("[::1]:%d" % self.port6)
        return """\
# written by tests/e2e/harness.py
hostname = %(hostname)s;
application = {
  debug = %(debug)s;
  maildir = {
    path = %(path)s;
    fsync = %(fsync)s;
  };
};
server = {
  listen = %(listen)s;
  max_connections = %(max_connections)d;%(per_ip)s
  max_message_size = %(max_message_size)d;
  max_recipients = %(max_recipients)d;
  command_timeout = %(command_timeout)d;
  data_timeout = %(data_timeout)d;
  user = %(user)s;
  group = %(group)s;
  pid_file = %(pid_file)s;
};
local = {
  domains = %(domains)s;
  users = %(users)s;
  postmaster = %(postmaster)s;
};
relay = {
  networks = %(networks)s;
};
log = {
  file = %(log_file)s;
};
delivery = {
%(delivery)s
};
""" % dict(
            hostname=conf_string(o["hostname"]),
            debug="true" if o["debug"] else "false",
            path=conf_string(self.root),
            fsync="true" if o["fsync"] else "false",
            listen=conf_list(listen),
            max_connections=o["max_connections"],
            per_ip="" if o["max_connections_per_ip"] is None else
            "\n  max_connections_per_ip = %d;" % o["max_connections_per_ip"],
            max_message_size=o["max_message_size"],
            max_recipients=o["max_recipients"],
            command_timeout=o["command_timeout"],
            data_timeout=o["data_timeout"],
            user=conf_string(me),
            group=conf_string(group),
            pid_file=conf_string(os.path.join(self.dir, "pollsmtpd.pid")),
            domains=conf_list(o["domains"]),
            users=conf_list(o["users"]),
            postmaster=conf_string(o["postmaster"]),
            networks=conf_list(o["relay_networks"]),
            log_file=conf_string(o["log_file"]),
            delivery="  enabled = false;" if o["delivery"] is None else
            "\n".join("  %s = %s;" % kv for kv in o["delivery"].items()),
        )

    # -- life cycle ---------------------------------------------------
    def command(self):
        cmd = [daemon_path(), "-f", "-c", self.conf_path]
        if VALGRIND:
            cmd = ["valgrind", "-q", "--error-exitcode=99",
                   "--leak-check=full",
                   "--errors-for-leak-kinds=definite,indirect,possible",
                   "--trace-children=no"] + cmd
        return cmd

    def start(self):
        path = daemon_path()
        if not os.access(path, os.X_OK):
            raise DaemonError("daemon not built: %s" % path)
        base = os.environ.get("E2E_TMPDIR") or None
        self.dir = tempfile.mkdtemp(prefix="pollsmtpd-e2e-", dir=base)
        if self.opts["delivery"] is not None:
            # The delivery agent runs as the unprivileged user and opens
            # the tree by its path, as in /var/spool: it must traverse.
            os.chmod(self.dir, 0o711)
        # A free port may be taken between our probe and the daemon's
        # bind(); try a few times before calling it a failure.
        last = ""
        for _attempt in range(3):
            self.port = free_port(self.opts["address"])
            if self.opts["ipv6"]:
                self.port6 = free_port("::1", socket.AF_INET6)
            with open(self.conf_path, "w") as f:
                f.write(self.config_text())
            logf = open(self.log_path, "ab")
            try:
                self.proc = subprocess.Popen(
                    self.command(), stdin=subprocess.DEVNULL,
                    stdout=logf, stderr=logf, cwd=self.dir,
                    preexec_fn=self._limits)
            finally:
                logf.close()
            if self._wait_ready():
                return self
            last = self.log_tail()
            if self.proc.poll() is None:
                self._kill()
                break
            if "in use" not in last:
                break
        status = self.proc.returncode
        self.proc = None
        shutil.rmtree(self.dir, ignore_errors=True)
        raise DaemonError("%s did not start (exit status %r); "
                          "stderr:\n%s" % (path, status, last))

    def _limits(self):
        """In the child, before exec: nofile sets the open file limit,
        soft and hard (so the daemon cannot raise it)."""
        if self.opts["nofile"] is not None:
            n = self.opts["nofile"]
            resource.setrlimit(resource.RLIMIT_NOFILE, (n, n))

    def _wait_ready(self):
        """Wait until the daemon greets; False if it died or never did."""
        deadline = time.monotonic() + START_TIMEOUT
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                return False
            try:
                s = socket.create_connection(
                    (self.opts["address"], self.port), timeout=1)
            except OSError:
                time.sleep(0.05)
                continue
            # Read the greeting and say QUIT, so that the probe is gone
            # (closed by the daemon) before the test begins: tests that
            # count connections must not see it.
            try:
                s.settimeout(max(1.0, deadline - time.monotonic()))
                data = b""
                while b"\n" not in data:
                    chunk = s.recv(4096)
                    if not chunk:
                        break
                    data += chunk
                s.sendall(b"QUIT\r\n")
                s.settimeout(5 * SLOW)
                while s.recv(4096):
                    pass
            except OSError:
                pass
            finally:
                s.close()
            return True
        return False

    def _kill(self):
        try:
            self.proc.kill()
        except OSError:
            pass
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            pass

    def alive(self):
        return self.proc is not None and self.proc.poll() is None

    def signal(self, sig):
        self.proc.send_signal(sig)

    def stop(self, remove=True):
        """SIGTERM, wait, and insist on exit status 0 (valgrind: no errors).

        The temporary directory is removed only when all went well, so that
        a failure leaves its log behind (its path is in the message)."""
        if self.proc is None:
            if remove and self.dir:
                shutil.rmtree(self.dir, ignore_errors=True)
            return None
        problem = None
        if self.proc.poll() is not None:
            problem = "pollsmtpd died during the test (status %d)" % \
                self.proc.returncode
        else:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(STOP_TIMEOUT)
            except subprocess.TimeoutExpired:
                self._kill()
                problem = "pollsmtpd did not stop within %d s of SIGTERM" % \
                    STOP_TIMEOUT
        self.exit_status = self.proc.returncode
        if problem is None and self.exit_status != 0:
            problem = "pollsmtpd exited with status %d after SIGTERM" % \
                self.exit_status
        self.proc = None
        if problem:
            raise DaemonError("%s; files in %s; stderr tail:\n%s" %
                              (problem, self.dir, self.log_tail()))
        if remove:
            shutil.rmtree(self.dir, ignore_errors=True)
        return self.exit_status

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()
        return False

    # -- clients ------------------------------------------------------
    def client(self, source=None, greet=True, timeout=None, ipv6=False):
        """A Client connected to the daemon (reads the greeting)."""
        c = Client(("::1", self.port6) if ipv6
                   else (self.opts["address"], self.port),
                   source=source, timeout=timeout)
        if greet:
            c.greeting = c.expect(220)
        return c

    def connections(self):
        """How many client connections the daemon holds open: its socket
        descriptors less its listeners."""
        n = 0
        base = "/proc/%d/fd" % self.proc.pid
        for fd in os.listdir(base):
            try:
                if os.readlink(os.path.join(base, fd)).startswith("socket:"):
                    n += 1
            except OSError:
                continue
        return n - (2 if self.port6 else 1)

    def wait_connections(self, n, timeout=10.0):
        """Wait until the daemon holds exactly n client connections (the
        start-up probe gone, or every client accepted); fail otherwise."""
        if not self.wait_for(lambda: self.connections() == n, timeout):
            raise AssertionError("daemon holds %d connections, not %d"
                                 % (self.connections(), n))

    def wait_for(self, predicate, timeout=2.0):
        """Poll predicate until it is true or timeout; return its value."""
        deadline = time.monotonic() + timeout * SLOW
        while True:
            v = predicate()
            if v or time.monotonic() > deadline:
                return v
            time.sleep(0.05)


# -- processes and tracing -------------------------------------------

def children_of(pid):
    """PIDs whose parent is pid (from /proc; empty if unknown)."""
    out = []
    for name in os.listdir("/proc"):
        if not name.isdigit():
            continue
        try:
            with open("/proc/%s/stat" % name) as f:
                stat = f.read()
        except OSError:
            continue
        fields = stat[stat.rfind(")") + 2:].split()
        if len(fields) > 1 and fields[1] == str(pid):
            out.append(int(name))
    return out


def running(pid):
    """True while pid exists and is not a zombie."""
    try:
        with open("/proc/%d/stat" % pid) as f:
            stat = f.read()
    except OSError:
        return False
    return stat[stat.rfind(")") + 2:].split()[0] != "Z"


def strace_usable(inject=False):
    """None when strace can trace here (and, with inject, inject faults),
    else why not."""
    if shutil.which("strace") is None:
        return "strace is not installed"
    cmd = ["strace", "-f", "-o", os.devnull]
    if inject:
        cmd += ["-e", "inject=getppid:error=EIO"]
    try:
        r = subprocess.run(cmd + ["true"], stdout=subprocess.DEVNULL,
                           stderr=subprocess.PIPE, timeout=20)
    except (OSError, subprocess.TimeoutExpired) as e:
        return "strace does not run: %s" % e
    if r.returncode != 0:
        return "ptrace%s not permitted: %s" % (
            " or fault injection" if inject else "",
            r.stderr.decode("latin-1", "replace").strip()[:200])
    return None


def no_leak_check():
    """strace options that give the traced daemon ASAN_OPTIONS with
    detect_leaks=0, the other options kept (the last one given wins):
    LeakSanitizer stops the world with ptrace, which a traced process
    cannot, so it would fail the exit status of every test. Without
    AddressSanitizer the variable is not read."""
    opts = os.environ.get("ASAN_OPTIONS", "")
    return ["-E", "ASAN_OPTIONS=" + (opts + ":" if opts else "") +
            "detect_leaks=0"]


class StracedDaemon(Daemon):
    """A Daemon whose command runs under strace. stop() signals the daemon
    itself (strace's child), not strace, so that the exit status strace
    passes on is the daemon's."""

    def stop(self, remove=True):
        if self.proc is None or self.proc.poll() is not None:
            return super().stop(remove)
        for pid in children_of(self.proc.pid):
            try:
                os.kill(pid, signal.SIGTERM)
            except OSError:
                pass
        try:
            self.proc.wait(STOP_TIMEOUT)
        except subprocess.TimeoutExpired:
            self._kill()
            raise DaemonError("pollsmtpd under strace did not stop on "
                              "SIGTERM; files in %s" % self.dir)
        self.exit_status = self.proc.returncode
        self.proc = None
        if self.exit_status != 0:
            raise DaemonError("pollsmtpd (strace) exited with status %d "
                              "after SIGTERM; files in %s; stderr tail:\n%s"
                              % (self.exit_status, self.dir,
                                 self.log_tail()))
        if remove:
            shutil.rmtree(self.dir, ignore_errors=True)
        return 0


REPLY_END = re.compile(rb"^(\d{3})(?: |\r?$)")
REPLY_LINE = re.compile(rb"^(\d{3})([ -])")


class Reply:
    """One SMTP reply: code, enhanced status (or None), its lines."""

    def __init__(self, lines):
        self.lines = lines                      # bytes, without CRLF
        self.code = int(lines[-1][:3])
        self.text = b"\n".join(lines).decode("latin-1")
        first = lines[0][4:].decode("latin-1")
        m = re.match(r"([245]\.\d{1,3}\.\d{1,3})(?: |$)", first)
        self.enhanced = m.group(1) if m else None

    @property
    def last(self):
        return self.lines[-1].decode("latin-1")

    def queued_id(self):
        m = re.search(r"queued as ([A-Za-z0-9]+)", self.text)
        return m.group(1) if m else None

    def __repr__(self):
        return "Reply(%r)" % self.text


class Client:
    """A raw SMTP client: bytes out, whole replies in; every call bounded."""

    def __init__(self, addr, source=None, timeout=None):
        self.timeout = timeout or IO_TIMEOUT
        family = socket.AF_INET6 if ":" in addr[0] else socket.AF_INET
        self.sock = socket.socket(family, socket.SOCK_STREAM)
        self.sock.settimeout(self.timeout)
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        if source:
            self.sock.bind((source, 0))
        self.sock.connect(addr)
        self.buf = b""
        self.eof = False
        self.greeting = None

    def close(self):
        try:
            self.sock.close()
        except OSError:
            pass

    def abort(self):
        """Close with a TCP RST instead of a FIN."""
        import struct
        try:
            self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER,
                                 struct.pack("ii", 1, 0))
        except OSError:
            pass
        self.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
        return False

    def send(self, data):
        if isinstance(data, str):
            data = data.encode("latin-1")
        self.sock.sendall(data)

    def send_background(self, data):
        """Send in a thread, so that a big pipelined batch cannot deadlock
        with a server that waits for us to read its replies first."""
        if isinstance(data, str):
            data = data.encode("latin-1")
        t = threading.Thread(target=self._send_quiet, args=(data,),
                             daemon=True)
        t.start()
        return t

    def _send_quiet(self, data):
        try:
            self.sock.sendall(data)
        except OSError:
            pass

    def cmd(self, line):
        """Send one command line (CRLF added) and read its reply."""
        self.send(line.encode("latin-1") + b"\r\n"
                  if isinstance(line, str) else line + b"\r\n")
        return self.reply()

    def _fill(self, timeout):
        self.sock.settimeout(timeout)
        try:
            chunk = self.sock.recv(65536)
        finally:
            self.sock.settimeout(self.timeout)
        if not chunk:
            self.eof = True
        self.buf += chunk
        return chunk

    def _line(self, deadline):
        while b"\n" not in self.buf:
            if self.eof:
                raise ConnectionError("connection closed; unread %r"
                                      % self.buf[:200])
            left = deadline - time.monotonic()
            if left <= 0:
                raise socket.timeout("no complete reply line; have %r"
                                     % self.buf[:200])
            try:
                self._fill(left)
            except socket.timeout:
                raise socket.timeout("no complete reply line within %gs;"
                                     " have %r" % (self.timeout,
                                                   self.buf[:200]))
            except ConnectionResetError:
                self.eof = True
        line, self.buf = self.buf.split(b"\n", 1)
        return line.rstrip(b"\r")

    def reply(self, timeout=None):
        """Read one whole reply (raises on timeout, EOF or a bad line)."""
        deadline = time.monotonic() + (timeout or self.timeout)
        lines = []
        while True:
            line = self._line(deadline)
            if not REPLY_LINE.match(line) and not REPLY_END.match(line):
                raise AssertionError("not an SMTP reply line: %r (after %r)"
                                     % (line, lines))
            lines.append(line)
            if REPLY_END.match(line):
                if any(l[:3] != line[:3] for l in lines):
                    raise AssertionError("reply lines disagree on the code:"
                                         " %r" % lines)
                return Reply(lines)

    def replies(self, n, timeout=None):
        return [self.reply(timeout) for _ in range(n)]

    def expect(self, code, enhanced=None, timeout=None):
        r = self.reply(timeout)
        if r.code != code or (enhanced is not None and
                              r.enhanced != enhanced):
            raise AssertionError("expected %s%s, got %r" % (
                code, " " + enhanced if enhanced else "", r.text))
        return r

    def nothing_more(self, wait=0.3):
        """True when no reply bytes arrive within wait seconds."""
        if self.buf:
            return False
        try:
            chunk = self._fill(wait * min(SLOW, 3))
        except socket.timeout:
            return True
        except ConnectionResetError:
            self.eof = True
            return True
        return not chunk

    def closed(self, timeout=None):
        """True when the server closes the connection within timeout
        (bytes that arrive before the close are kept in self.buf)."""
        deadline = time.monotonic() + (timeout or self.timeout)
        while not self.eof:
            left = deadline - time.monotonic()
            if left <= 0:
                return False
            try:
                self._fill(left)
            except socket.timeout:
                return False
            except ConnectionResetError:
                self.eof = True
        return True

    def hello(self, name=HELO):
        return self.expect_ok("EHLO " + name, 250)

    def expect_ok(self, line, code, enhanced=None):
        self.send(line + "\r\n")
        try:
            return self.expect(code, enhanced)
        except AssertionError as e:
            raise AssertionError("%s -> %s" % (line, e))

    def transaction(self, sender, rcpts, body):
        """MAIL, RCPT..., DATA, body (CRLF lines, dot-stuffed by us),
        return the final reply."""
        self.expect_ok("MAIL FROM:<%s>" % sender, 250, "2.1.0")
        for r in rcpts:
            self.expect_ok("RCPT TO:<%s>" % r, 250, "2.1.5")
        self.expect_ok("DATA", 354)
        self.send(body)
        return self.reply()


# -- message helpers -------------------------------------------------

def smtp_data(text):
    """Message text (str or bytes, LF line ends) as sent in DATA:
    CRLF line ends, dot-stuffed, with the terminating CRLF.CRLF."""
    if isinstance(text, str):
        text = text.encode("latin-1")
    lines = text.split(b"\n")
    if lines and lines[-1] == b"":
        lines.pop()
    out = b"".join((b"." + l if l.startswith(b".") else l) + b"\r\n"
                   for l in lines)
    return out + b".\r\n"


DATE_RE = (r"(?:Mon|Tue|Wed|Thu|Fri|Sat|Sun), \d{1,2} "
           r"(?:Jan|Feb|Mar|Apr|May|Jun|Jul|Aug|Sep|Oct|Nov|Dec) "
           r"\d{4} \d{2}:\d{2}:\d{2} [+-]\d{4}")


def received_re(helo, addr, msgid, proto="ESMTP", hostname=HOSTNAME):
    """The server's Received: line (unfolded, without LF)."""
    return re.compile(
        r"Received: from %s \(\[%s\]\) by %s \(pollsmtpd\) with %s id %s;"
        r" (%s)$" % (re.escape(helo), re.escape(addr), re.escape(hostname),
                     proto, re.escape(msgid), DATE_RE))


def split_trace(data, nlines):
    """Split a stored file into its first nlines header lines (unfolded
    header fields, as str) and the rest (bytes)."""
    fields = []
    rest = data
    while len(fields) < nlines:
        nl = rest.find(b"\n")
        if nl < 0:
            raise AssertionError("file ends inside the trace headers: %r"
                                 % data[:500])
        line, rest = rest[:nl], rest[nl + 1:]
        # A folded field continues on lines that start with white space.
        while rest[:1] in (b" ", b"\t"):
            nl = rest.find(b"\n")
            if nl < 0:
                raise AssertionError("unterminated folded header: %r"
                                     % data[:500])
            line += b" " + rest[:nl].lstrip(b" \t")
            rest = rest[nl + 1:]
        fields.append(line.decode("latin-1"))
    return fields, rest


class DaemonTestCase(unittest.TestCase):
    """A fresh daemon for each test; after each test it must still be
    alive and must stop with exit status 0 on SIGTERM."""

    daemon_opts = {}

    def setUp(self):
        self.d = Daemon(**self.daemon_opts).start()
        self.addCleanup(self._stop_daemon)

    def _stop_daemon(self):
        if self.d.proc is None:
            # The test stopped it itself (and checked the exit status).
            self.d.stop()
            return
        alive = self.d.alive()
        self.d.stop()  # raises (test fails) on a bad exit status
        self.assertTrue(alive, "daemon died during the test")

    def client(self, **kw):
        c = self.d.client(**kw)
        self.addCleanup(c.close)
        return c

    def assertDaemonAlive(self):
        self.assertTrue(self.d.alive(), "daemon died; stderr:\n%s"
                        % self.d.log_tail())
        # It must also still serve.
        with self.d.client() as c:
            c.expect_ok("NOOP", 250, "2.0.0")

    def assertMaildirName(self, name, msgid):
        self.assertRegex(name, r"^\d+\.%s\.%s$" % (
            re.escape(msgid), re.escape(HOSTNAME)))

    def assertDelivered(self, user, msgid, sender, rcpt, message,
                        helo=HELO, addr="127.0.0.1", proto="ESMTP"):
        """root/<user>/new holds exactly one file for msgid, and its bytes
        are the trace header lines followed by message (bytes, LF ends)."""
        names = [n for n in self.d.files(user) if ".%s." % msgid in n]
        self.assertEqual(len(names), 1, "files of %s in %s/new: %r" % (
            msgid, user, self.d.files(user)))
        self.assertMaildirName(names[0], msgid)
        data = self.d.read(user, names[0])
        self.assertStoredBytes(data, msgid, sender, rcpt, message, helo,
                               addr, proto)
        return names[0]

    def assertStoredBytes(self, data, msgid, sender, rcpt, message,
                          helo=HELO, addr="127.0.0.1", proto="ESMTP"):
        fields, rest = split_trace(data, 3)
        self.assertEqual(fields[0], "Return-Path: <%s>" % sender)
        if rcpt is not None:
            self.assertEqual(fields[1], "Delivered-To: %s" % rcpt)
        else:
            self.assertTrue(fields[1].startswith("Delivered-To: "),
                            fields[1])
        self.assertRegex(fields[2], received_re(helo, addr, msgid, proto))
        self.assertEqual(rest, message)
