"""test_resolver - the delivery agent asks the configured resolver, and
nothing else.

The daemon runs under `strace -ff` (one trace file per process: the
daemon, the logger, the delivery agent), tracing the calls that name a
destination or send: connect, sendto, sendmsg, sendmmsg. From the trace:

- every IPv4/IPv6 destination of any process is on loopback (127.0.0.0/8,
  ::1), whatever the call's result: nothing was even tried elsewhere;
- every destination on port 53 or on the test's DNS port is exactly
  127.0.0.1:PORT, the one `delivery.resolvers` names;
- the agent's sends without an address go out on sockets it connected
  before (to a destination checked above), so no packet escapes the
  check; and the agent did send to 127.0.0.1:PORT.

As a second witness, the test's dnsmasq (log-queries) logged exactly the
questions the letters needed: MX for each domain; AAAA and A for an MX
host, or for the domain itself when it has no MX (implicit MX); nothing
after an NXDOMAIN.

The other way round, once: with `delivery.resolvers` empty the agent
reads /etc/resolv.conf and asks the name servers listed there. That case
runs only where it is safe: as root, inside a network namespace of its
own (`unshare -n`) whose only interface is loopback, so that no query can
leave the machine, and every query towards a server off loopback fails
at once (the trace shows each one failed). The letter is queued by a
first daemon outside the namespace (the test cannot reach one inside).

Skipped, with the reason, without strace or where ptrace is not allowed;
the namespace case also without root, unshare or ip.
"""

import ipaddress
import os
import re
import shutil
import subprocess
import tempfile
import unittest

import harness
from harness import (Daemon, StracedDaemon, SLOW, START_TIMEOUT,
                     no_leak_check, strace_usable)
from test_delivery import CURRENT, DeliveryTest, wait_until

NET_CALLS = ("connect", "sendto", "sendmsg", "sendmmsg")

CALL = re.compile(r"^(\w+)\((\d+), (.*)\) += (-?\d+)(?: (E[A-Z0-9]+))?")
FAMILY = re.compile(r"sa_family=(AF_INET6?)\b")
INET = re.compile(r"sa_family=AF_INET, sin_port=htons\((\d+)\), "
                  r"sin_addr=inet_addr\(\"([^\"]+)\"\)")
INET6 = re.compile(r"sa_family=AF_INET6, sin6_port=htons\((\d+)\), "
                   r"sin6_flowinfo=[^,]+, "
                   r"inet_pton\(AF_INET6, \"([^\"]+)\"")
RESOLV_OPEN = re.compile(r"^open(?:at)?\(.*\"/etc/resolv\.conf\"")
QUERY = re.compile(r"query\[(\w+)\] (\S+) from (\S+)")


class Call:
    """One traced call that names or uses a destination."""

    def __init__(self, name, fd, args, result, err, line):
        self.name = name
        self.fd = fd
        self.result = result
        self.err = err
        self.line = line
        # Every IPv4 and IPv6 address in it, as (address, port).
        self.dests = [(a, int(p)) for p, a in INET.findall(args)] + \
            [(a, int(p)) for p, a in INET6.findall(args)]
        families = FAMILY.findall(args)
        if len(families) != len(self.dests):
            raise AssertionError("cannot read every address of: %s" % line)
        if name == "sendmmsg" and "...]" in args:
            raise AssertionError("sendmmsg shown cut short: %s" % line)
        # A send that names no address goes to the socket's peer.
        self.unaddressed = name != "connect" and not families and \
            "AF_" not in args

    @property
    def failed(self):
        return self.result < 0


def parse_trace(text):
    calls, resolv_opened = [], False
    for line in text.splitlines():
        if RESOLV_OPEN.match(line):
            resolv_opened = True
            continue
        m = CALL.match(line)
        if m is None or m.group(1) not in NET_CALLS:
            continue
        calls.append(Call(m.group(1), int(m.group(2)), m.group(3),
                          int(m.group(4)), m.group(5), line))
    return calls, resolv_opened


def is_loopback(addr):
    ip = ipaddress.ip_address(addr.split("%")[0])
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped:
        ip = ip.ipv4_mapped
    return ip.is_loopback


class TracedDaemon(StracedDaemon):
    """pollsmtpd under strace -ff, each process to its own file;
    wrap: a command (unshare) that runs strace."""

    def __init__(self, calls=NET_CALLS, wrap=(), **opts):
        super().__init__(**opts)
        self.calls = calls
        self.wrap = list(wrap)

    @property
    def trace_prefix(self):
        return os.path.join(self.dir, "trace")

    def command(self):
        return self.wrap + [
            "strace", "-ff", "-qq", "-e", "signal=none",
            "-o", self.trace_prefix, "-e", "trace=" + ",".join(self.calls),
        ] + no_leak_check() + super().command()

    def traces(self):
        """{pid: (calls, opened /etc/resolv.conf)} of every process."""
        out = {}
        for n in os.listdir(self.dir):
            if n.startswith("trace."):
                with open(os.path.join(self.dir, n), "rb") as f:
                    text = f.read().decode("latin-1")
                out[int(n.split(".")[1])] = parse_trace(text)
        return out

    def agent_pids(self):
        return [int(p) for p in
                re.findall(r"delivery agent started \(pid (\d+)\)",
                           self.log())]


class NetnsDaemon(TracedDaemon):
    """A TracedDaemon in a network namespace of its own: the test cannot
    connect to it, so it is ready when its agent says it serves."""

    def _wait_ready(self):
        try:
            wait_until(lambda: self.proc.poll() is not None or
                       "delivery agent serving" in self.log(),
                       START_TIMEOUT / SLOW, "the agent in the namespace")
        except AssertionError:
            return False
        return self.proc.poll() is None


def netns_usable():
    """None when a network namespace with only loopback up can be made
    here, else why not."""
    if os.getuid() != 0:
        return "a network namespace needs root"
    for tool in ("unshare", "ip"):
        if shutil.which(tool) is None:
            return "%s is not installed" % tool
    try:
        r = subprocess.run(
            ["unshare", "-n", "--", "sh", "-c",
             "ip link set lo up && ip -o link show | wc -l"],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=20)
    except (OSError, subprocess.TimeoutExpired) as e:
        return "unshare does not run: %s" % e
    if r.returncode != 0:
        return "unshare -n failed: %s" % r.stderr.decode(
            "latin-1", "replace").strip()[:200]
    if r.stdout.strip() != b"1":
        return "the new namespace has more than loopback"
    return None


def resolv_conf_servers():
    """The name servers /etc/resolv.conf lists (c-ares's default,
    127.0.0.1, when it lists none)."""
    servers = []
    try:
        with open("/etc/resolv.conf") as f:
            for line in f:
                words = line.split()
                if len(words) >= 2 and words[0] == "nameserver":
                    servers.append(words[1].split("%")[0])
    except OSError:
        pass
    return servers or ["127.0.0.1"]


class ResolverTest(DeliveryTest):

    def setUp(self):
        why = strace_usable()
        if why:
            self.skipTest(why)
        super().setUp()

    def start_traced(self, cls=TracedDaemon, resolvers=None, **opts):
        d = dict(
            resolvers=harness.conf_list(resolvers or []),
            port=str(self.sink_port),
            retry_first="60",
            retry_max="60",
            max_lifetime="3600",
            claim_timeout="3600",
        )
        self.daemon = cls(delivery=d, users=["alice", "bob"],
                          domains=["example.org"], **opts)
        self.daemon.start()
        CURRENT["daemon"] = self.daemon
        self.addCleanup(self._stop)
        return self.daemon

    def stopped_traces(self):
        """Stop the daemon (every trace line is written then) and parse
        its traces; its directory goes when the test ends."""
        d = self.daemon
        d.stop(remove=False)
        self.addCleanup(shutil.rmtree, d.dir, True)
        traces = d.traces()
        agents = d.agent_pids()
        self.assertEqual(len(agents), 1, d.log_tail())
        self.assertIn(agents[0], traces, "the agent was not traced")
        return traces, agents[0]

    def assert_loopback_only(self, traces):
        for pid, (calls, _) in traces.items():
            for c in calls:
                for addr, port in c.dests:
                    self.assertTrue(is_loopback(addr), "pid %d: %s"
                                    % (pid, c.line))

    def assert_unaddressed_sends_connected(self, calls):
        """Each send without an address is on a socket that connect()
        gave a peer (checked with the other destinations) before."""
        peer = {}
        for c in calls:
            if c.name == "connect":
                if c.err in (None, "EINPROGRESS") and c.dests:
                    peer[c.fd] = c.dests[0]
                else:
                    peer.pop(c.fd, None)
            elif c.unaddressed and not c.failed:
                self.assertIn(c.fd, peer, "a send to an unknown peer: %s"
                              % c.line)


class TestOnlyTheConfiguredResolver(ResolverTest):

    def test_every_query_goes_to_delivery_resolvers(self):
        """MX, implicit MX and NXDOMAIN letters: every DNS packet of
        every process went to 127.0.0.1:PORT, nothing anywhere off
        loopback; dnsmasq saw exactly the questions needed."""
        self.dns.mx("mxdom.test", "mx1.mxdom.test", 10)
        self.dns.a("mx1.mxdom.test", "127.0.0.2")
        self.dns.a("implicit.test", "127.0.0.2")
        self.dns.start()
        resolver = ("127.0.0.1", self.dns.port)
        # Destinations are told apart by port: the sink's must differ.
        while self.sink_port == self.dns.port:
            self.sink_port = harness.free_port("127.0.0.2")
        sink = self.add_sink("127.0.0.2")
        self.start_traced(resolvers=["%s:%d" % resolver])
        self.send(["bob@mxdom.test", "carol@implicit.test",
                   "dave@nx.test"])
        wait_until(lambda: len(sink.letters) == 2, 20, "two letters")
        wait_until(lambda: self.daemon.files("alice"), 20,
                   "the NXDOMAIN bounce")
        for dom in ("mxdom.test", "implicit.test", "nx.test"):
            self.wait_empty(dom)
        self.assertEqual(sorted(r for _, rcpts, _ in sink.letters
                                for r in rcpts),
                         ["bob@mxdom.test", "carol@implicit.test"])
        self.assertIn(b"Status: 5.1.2", self.bounces()[0])

        traces, agent = self.stopped_traces()
        self.assert_loopback_only(traces)
        for pid, (calls, _) in traces.items():
            for c in calls:
                for dest in c.dests:
                    if dest[1] in (53, self.dns.port):
                        self.assertEqual(dest, resolver, "pid %d: %s"
                                         % (pid, c.line))
        calls = traces[agent][0]
        self.assert_unaddressed_sends_connected(calls)
        self.assertTrue([c for c in calls if resolver in c.dests],
                        "the agent never addressed %s:%d" % resolver)
        # The SMTP connections went to the sink only.
        smtp = {d for c in calls for d in c.dests if d != resolver}
        self.assertEqual(smtp, {("127.0.0.2", self.sink_port)})

        # The second witness: what dnsmasq was asked, and by whom.
        asked = QUERY.findall(self.dns.queries())
        self.assertEqual({(t, n) for t, n, _ in asked}, {
            ("MX", "mxdom.test"), ("AAAA", "mx1.mxdom.test"),
            ("A", "mx1.mxdom.test"),
            ("MX", "implicit.test"), ("AAAA", "implicit.test"),
            ("A", "implicit.test"),
            ("MX", "nx.test"),
        })
        self.assertEqual({src for _, _, src in asked}, {"127.0.0.1"})


class TestResolvConfWhenNoneConfigured(ResolverTest):

    def setUp(self):
        why = netns_usable()
        if why:
            self.skipTest("no safe place to let the agent use "
                          "/etc/resolv.conf: %s" % why)
        super().setUp()

    def test_empty_resolvers_read_resolv_conf(self):
        """delivery.resolvers = []: the agent opens /etc/resolv.conf and
        asks its name servers, from a namespace where only loopback
        exists; every query off loopback failed, the letter is deferred."""
        servers = resolv_conf_servers()
        base = tempfile.mkdtemp(prefix="pollsmtpd-resolv-",
                                dir=os.environ.get("E2E_TMPDIR") or None)
        self.addCleanup(shutil.rmtree, base, True)
        os.chmod(base, 0o711)
        harness.give_to_daemon_user(base)
        root = os.path.join(base, "root")

        # Queued by a daemon without an agent, outside the namespace.
        rx = Daemon(root=root, users=["alice", "bob"],
                    domains=["example.org"])
        rx.start()
        self.daemon = rx
        try:
            self.send(["bob@resolv.test"])
        finally:
            rx.stop()
        self.assertEqual(len(rx.queue_files("resolv.test")), 1)

        self.start_traced(
            cls=NetnsDaemon, resolvers=[], root=root,
            calls=NET_CALLS + ("open", "openat"),
            wrap=["unshare", "-n", "--", "sh", "-c",
                  'ip link set lo up && exec "$@"', "sh"])
        name = wait_until(lambda: self.deferred("resolv.test"), 30,
                          "the letter deferred")
        state = self.state("resolv.test", name)
        self.assertRegex(state.get("last_error", ""), r"4\.4\.3")

        traces, agent = self.stopped_traces()
        calls, opened = traces[agent]
        self.assertTrue(opened, "the agent did not open /etc/resolv.conf")
        self.assert_unaddressed_sends_connected(calls)
        asked = [c for c in calls if c.dests]
        self.assertTrue(asked, "the agent asked no name server")
        for c in asked:
            for addr, port in c.dests:
                self.assertIn(addr, servers, c.line)
                self.assertEqual(port, 53, c.line)
                if not is_loopback(addr):
                    self.assertTrue(c.failed, "went out: %s" % c.line)
        # Nothing else of the daemon's went anywhere off loopback.
        del traces[agent]
        self.assert_loopback_only(traces)


if __name__ == "__main__":
    unittest.main()
