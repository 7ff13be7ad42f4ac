"""test_inspect - maildir-inspect against hand-made Maildir trees.

Each test writes a tree in a temporary directory - queue files with the
exact envelope format, error/ letters, stale tmp/ files (old mtimes set
with os.utime), bad names, malformed envelopes - runs the built
maildir-inspect ($MAILDIR_INSPECT) on it and checks the text and JSON
output field by field, and the exit status. The last test, when the daemon
is built ($POLLSMTPD), relays a message through it and inspects the queue
it made.

With E2E_VALGRIND=1 every run of maildir-inspect is under valgrind (any
error or leak makes it exit 99).
"""

import json
import os
import shutil
import stat
import subprocess
import tempfile
import threading
import time
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
HOST = "mx.test.example"
VALGRIND = os.environ.get("E2E_VALGRIND", "") == "1"

EX_USAGE = 64
EX_NOINPUT = 66
EX_IOERR = 74
EX_CONFIG = 78

# qshape's default buckets: JSON labels, and the text header's.
BUCKETS = ["0-5m", "5-10m", "10-20m", "20-40m", "40-80m", "80-160m",
           "160-320m", "320-640m", "640-1280m", "1280m+"]
QSHAPE = ["T", "5", "10", "20", "40", "80", "160", "320", "640", "1280",
          "1280+"]


def inspect_path():
    path = os.environ.get("MAILDIR_INSPECT")
    if not path:
        path = os.path.join(HERE, "..", "..", "src", "maildir-inspect",
                            "maildir-inspect")
    return os.path.abspath(path)


def envelope(sender, rcpts, params=""):
    text = "X-Envelope-From: <%s>%s\n" % (sender,
                                         " " + params if params else "")
    text += "".join("X-Envelope-To: <%s>\n" % r for r in rcpts)
    return text.encode("ascii")


def received(msgid):
    return ("Received: from client.test.example ([127.0.0.1]) by %s "
            "(pollsmtpd) with ESMTP id %s; Thu, 26 Nov 2026 07:00:00 +0000\n"
            % (HOST, msgid)).encode("ascii")


MESSAGE = b"Subject: test\nFrom: <a@example.net>\n\nHello.\n"


class Tree:
    """A Maildir tree under root, written the way the daemon writes it."""

    def __init__(self, root, queue=True):
        self.root = root
        self.now = int(time.time())
        os.makedirs(root)
        if queue:
            os.makedirs(self.path(".OTHER_SERVERS", ".tmp"))

    def path(self, *parts):
        return os.path.join(self.root, *parts)

    def write(self, rel, data, age=0):
        """A file at root/rel holding data, last modified age s ago."""
        p = self.path(rel)
        os.makedirs(os.path.dirname(p), exist_ok=True)
        with open(p, "wb") as f:
            f.write(data)
        t = self.now - age
        os.utime(p, (t, t))
        return t

    def domain(self, domain, error_dir=True):
        os.makedirs(self.path(".OTHER_SERVERS", domain), exist_ok=True)
        if error_dir:
            os.makedirs(self.path(".OTHER_SERVERS", domain, "error"),
                        exist_ok=True)

    def letter(self, domain, msgid, sender="a@example.net", rcpts=None,
               params="", message=MESSAGE, age=0, error=False, data=None,
               name=None):
        """Queue a letter; returns (name, mtime, size)."""
        self.domain(domain)
        if rcpts is None:
            rcpts = ["r@" + domain]
        if name is None:
            name = "%d.%s.%s" % (self.now - age, msgid, HOST)
        if data is None:
            data = envelope(sender, rcpts, params) + received(msgid) + message
        rel = os.path.join(".OTHER_SERVERS", domain,
                           "error" if error else "", name)
        mtime = self.write(rel, data, age)
        return name, mtime, len(data)

    def user(self, name, new=0, cur=0):
        for sub in ("tmp", "new", "cur"):
            os.makedirs(self.path(name, sub), exist_ok=True)
        for i in range(new):
            self.write(os.path.join(name, "new", "%d.U%d.%s" % (
                self.now, i, HOST)), b"Subject: x\n\nx\n")
        for i in range(cur):
            self.write(os.path.join(name, "cur", "%d.C%d.%s:2,S" % (
                self.now, i, HOST)), b"Subject: x\n\nx\n")

    def snapshot(self):
        """Every path below root with its type, size, mtime and bytes."""
        out = {}
        for dirpath, dirs, names in os.walk(self.root):
            for n in dirs + names:
                p = os.path.join(dirpath, n)
                st = os.lstat(p)
                data = None
                if stat.S_ISREG(st.st_mode):
                    with open(p, "rb") as f:
                        data = f.read()
                out[os.path.relpath(p, self.root)] = (
                    stat.S_IFMT(st.st_mode), st.st_mode, st.st_size,
                    st.st_mtime_ns, data)
        return out


class InspectTestCase(unittest.TestCase):

    def setUp(self):
        self.binary = inspect_path()
        if not os.access(self.binary, os.X_OK):
            self.fail("maildir-inspect not built: %s" % self.binary)
        self.tmp = tempfile.mkdtemp(prefix="inspect-e2e-",
                                    dir=os.environ.get("E2E_TMPDIR"))
        self.addCleanup(shutil.rmtree, self.tmp, True)
        self.t = Tree(os.path.join(self.tmp, "root"))

    def run_inspect(self, *args, root=None, status=0):
        """Run maildir-inspect -d ROOT ARGS (root=False: no -d); check the
        exit status; return (stdout as str, stderr as str)."""
        cmd = [self.binary]
        if VALGRIND:
            cmd = ["valgrind", "-q", "--error-exitcode=99",
                   "--leak-check=full", "--errors-for-leak-kinds=definite"
                   ] + cmd
        if root is None:
            root = self.t.root
        if root is not False:
            cmd += ["-d", root]
        cmd += list(args)
        p = subprocess.run(cmd, stdin=subprocess.DEVNULL,
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                           timeout=300 if VALGRIND else 60)
        out = p.stdout.decode("utf-8", "surrogateescape")
        err = p.stderr.decode("utf-8", "surrogateescape")
        self.assertEqual(p.returncode, status,
                         "%r: exit %d\nstdout:\n%s\nstderr:\n%s"
                         % (args, p.returncode, out, err))
        return out, err

    def run_json(self, *args, root=None, status=0):
        out, err = self.run_inspect("--json", *args, root=root,
                                    status=status)
        self.assertTrue(out.endswith("}\n"), out)
        self.assertEqual(out.count("\n"), 1, "one line of JSON: %r" % out)
        doc = json.loads(out)
        self.assertEqual(doc["version"], 1)
        return doc, err

    def table(self, out):
        """Text output as rows of white-space separated fields."""
        return [line.split() for line in out.splitlines()]


class SummaryTest(InspectTestCase):

    def make_queue(self):
        t = self.t
        self.a1 = t.letter("remote.example", "AAAA1", age=7200)
        self.a2 = t.letter("remote.example", "AAAA2", age=60,
                           rcpts=["x@remote.example", "y@remote.example"])
        self.a3 = t.letter("remote.example", "AAAA3", age=90000, error=True)
        self.b1 = t.letter("other.example", "BBBB1", sender="", age=600)
        t.domain("empty.example")          # an emptied domain: not shown
        t.user("alice", new=2, cur=3)
        t.user("bob")
        # Not users: hidden, incomplete, a plain file.
        os.makedirs(t.path(".hidden", "new"))
        os.makedirs(t.path("half", "new"))
        t.write("README", b"x\n")

    def test_summary_json(self):
        self.make_queue()
        doc, err = self.run_json("summary")
        self.assertEqual(err, "")
        self.assertEqual(doc["command"], "summary")
        self.assertEqual(doc["root"], self.t.root)
        now = doc["now"]
        self.assertLessEqual(abs(now - self.t.now), 60)
        self.assertEqual(doc["domains"], [
            {"domain": "other.example", "queued": 1, "bytes": self.b1[2],
             "oldest": now - self.b1[1], "error": 0, "error_bytes": 0},
            {"domain": "remote.example", "queued": 2,
             "bytes": self.a1[2] + self.a2[2], "oldest": now - self.a1[1],
             "error": 1, "error_bytes": self.a3[2]},
        ])
        self.assertEqual(doc["users"], [
            {"user": "alice", "new": 2, "cur": 3},
            {"user": "bob", "new": 0, "cur": 0},
        ])
        self.assertEqual(doc["totals"], {
            "domains": 2, "queued": 3,
            "bytes": self.a1[2] + self.a2[2] + self.b1[2],
            "oldest": now - self.a1[1], "error": 1,
            "error_bytes": self.a3[2], "new": 2, "cur": 3})

    def test_summary_text_is_default(self):
        self.make_queue()
        out, err = self.run_inspect()
        self.assertEqual(err, "")
        out2, _ = self.run_inspect("summary")
        self.assertEqual(out, out2)
        rows = self.table(out)
        self.assertEqual(rows[0], ["DOMAIN", "QUEUED", "BYTES", "OLDEST",
                                   "ERROR"])
        self.assertEqual(rows[1], ["other.example", "1", str(self.b1[2]),
                                   "10m", "0"])
        self.assertEqual(rows[2], ["remote.example", "2",
                                   str(self.a1[2] + self.a2[2]), "2h00m",
                                   "1"])
        self.assertEqual(rows[3], ["TOTAL", "3", str(
            self.a1[2] + self.a2[2] + self.b1[2]), "2h00m", "1"])
        self.assertEqual(rows[4], [])
        self.assertEqual(rows[5], ["USER", "NEW", "CUR"])
        self.assertEqual(rows[6], ["alice", "2", "3"])
        self.assertEqual(rows[7], ["bob", "0", "0"])
        self.assertEqual(rows[8], ["TOTAL", "2", "3"])
        self.assertEqual(len(rows), 9)

    def test_summary_users_from_config(self):
        self.make_queue()
        conf = os.path.join(self.tmp, "pollsmtpd.conf")
        with open(conf, "w") as f:
            f.write('application = { maildir = { path = "%s"; }; };\n'
                    'local = { domains = [ "example.org" ];\n'
                    '  users = [ "bob", "carol", "alice" ];\n'
                    '  postmaster = "alice"; };\n' % self.t.root)
        doc, _ = self.run_json("-c", conf, root=False)
        self.assertEqual(doc["root"], self.t.root)
        # Configuration order; carol has no Maildir.
        self.assertEqual(doc["users"], [
            {"user": "bob", "new": 0, "cur": 0},
            {"user": "carol", "new": None, "cur": None},
            {"user": "alice", "new": 2, "cur": 3},
        ])
        self.assertEqual(doc["totals"]["queued"], 3)
        out, _ = self.run_inspect("-c", conf, root=False)
        self.assertIn(["carol", "-", "-"], self.table(out))

    def test_empty_root(self):
        doc, _ = self.run_json()
        self.assertEqual(doc["domains"], [])
        self.assertEqual(doc["users"], [])
        self.assertEqual(doc["totals"], {
            "domains": 0, "queued": 0, "bytes": 0, "oldest": None,
            "error": 0, "error_bytes": 0, "new": 0, "cur": 0})
        out, _ = self.run_inspect()
        self.assertEqual(self.table(out), [
            ["DOMAIN", "QUEUED", "BYTES", "OLDEST", "ERROR"],
            ["TOTAL", "0", "0", "-", "0"]])
        # Not even .OTHER_SERVERS (the daemon never ran): an empty queue.
        os.rmdir(self.t.path(".OTHER_SERVERS", ".tmp"))
        os.rmdir(self.t.path(".OTHER_SERVERS"))
        doc, _ = self.run_json()
        self.assertEqual(doc["totals"]["queued"], 0)
        out, _ = self.run_inspect("check")
        self.assertEqual(out, "no problems (0 letters checked)\n")
        doc, _ = self.run_json("list")
        self.assertEqual(doc["letters"], [])
        self.assertEqual(doc["count"], 0)
        doc, _ = self.run_json("ages")
        self.assertEqual(doc["totals"], {"total": 0, "counts": [0] * 10})

    def test_missing_root(self):
        missing = os.path.join(self.tmp, "nothing")
        for cmd in (["summary"], ["list"], ["show", "ABC"], ["ages"],
                    ["check"], ["--json", "summary"]):
            out, err = self.run_inspect(*cmd, root=missing,
                                        status=EX_NOINPUT)
            self.assertEqual(out, "")
            self.assertIn(missing, err)
            self.assertIn("No such file or directory", err)
        # A file where the root should be.
        self.t.write("file", b"")
        self.run_inspect(root=self.t.path("file"), status=EX_NOINPUT)
        self.assertFalse(os.path.exists(missing), "nothing is created")

    def test_read_only(self):
        """No command changes a byte, a name or an mtime of the tree."""
        self.make_queue()
        self.t.write(".OTHER_SERVERS/.tmp/1.STALE.x.0", b"x", age=200000)
        self.t.write(".OTHER_SERVERS/remote.example/bad name", b"x")
        os.chmod(self.t.path("alice", "new"), 0o500)
        self.addCleanup(os.chmod, self.t.path("alice", "new"), 0o700)
        before = self.t.snapshot()
        for args in (["summary"], ["list"], ["list", "--error"],
                     ["show", "AAAA1", "--body"], ["ages"], ["check"]):
            self.run_inspect(*args, status=1 if args == ["check"] else 0)
            self.run_inspect("--json", *args,
                             status=1 if args == ["check"] else 0)
        self.assertEqual(self.t.snapshot(), before)


class ListTest(InspectTestCase):

    def make_queue(self):
        t = self.t
        self.l = {
            "A1": t.letter("remote.example", "A1", sender="Alice@Example.NET",
                           params="SIZE=1234 BODY=8BITMIME", age=3 * 3600,
                           rcpts=["u1@remote.example", "u2@remote.example",
                                  "u3@remote.example"]),
            "A2": t.letter("remote.example", "A2", sender="bob@example.net",
                           age=125),
            "A3": t.letter("remote.example", "A3", sender="", age=86400 * 2,
                           error=True),
            "B1": t.letter("other.example", "B1", sender="",
                           rcpts=["Postmaster@Other.example"], age=30),
            "C1": t.letter("third.example", "C1", age=5000,
                           data=b"X-Envelope-To: <r@third.example>\n"
                           + received("C1") + MESSAGE),
        }

    def ids(self, doc):
        return [x["id"] for x in doc["letters"]]

    def test_list_json(self):
        self.make_queue()
        doc, err = self.run_json("list")
        self.assertEqual(err, "")
        self.assertEqual(doc["command"], "list")
        self.assertEqual(doc["filters"], {"domain": None, "from": None,
                                          "to": None, "older_than": None,
                                          "error": False})
        # By domain, then oldest first; error/ letters are not listed.
        self.assertEqual(self.ids(doc), ["B1", "A1", "A2", "C1"])
        now = doc["now"]
        name, mtime, size = self.l["A1"]
        self.assertEqual(doc["letters"][1], {
            "id": "A1", "domain": "remote.example",
            "domain_unicode": "remote.example", "state": "queued",
            "file": name,
            "path": ".OTHER_SERVERS/remote.example/" + name,
            "size": size, "mtime": mtime, "age": now - mtime,
            "sender": "Alice@Example.NET",
            "params": "SIZE=1234 BODY=8BITMIME",
            "recipients": ["u1@remote.example", "u2@remote.example",
                           "u3@remote.example"],
            "recipient_params": ["", "", ""],
            "dsn": {"ret": None, "envid": None, "notify": [None] * 3,
                    "orcpt": [None] * 3},
            "malformed": None,
            # The delivery agent's state: never tried.
            "claimed": False, "claimed_by": None, "claimed_since": None,
            "attempts": 0, "next_attempt": None,
            "last_error": None})
        b1 = doc["letters"][0]
        self.assertEqual(b1["sender"], "")
        self.assertEqual(b1["params"], "")
        self.assertEqual(b1["recipients"], ["Postmaster@Other.example"])
        c1 = doc["letters"][3]
        self.assertIsNone(c1["sender"])
        self.assertIsNone(c1["params"])
        self.assertEqual(c1["recipients"], [])
        self.assertEqual(c1["malformed"],
                         "line 1: X-Envelope-To before X-Envelope-From")
        self.assertEqual(doc["count"], 4)
        self.assertEqual(doc["bytes"], sum(self.l[i][2] for i in
                                           ("A1", "A2", "B1", "C1")))

    def arrival(self, key):
        return time.strftime("%Y-%m-%dT%H:%M:%SZ",
                             time.gmtime(self.l[key][1]))

    def test_list_text(self):
        """Like postqueue -p: arrival time, sender and every recipient,
        then a total line."""
        self.make_queue()
        out, err = self.run_inspect("list")
        self.assertEqual(err, "")
        rows = self.table(out)
        self.assertEqual(rows[0], ["ID", "DOMAIN", "SIZE", "ARRIVAL", "AGE",
                                   "RCPTS", "SENDER", "RECIPIENTS"])
        self.assertEqual(rows[1][:4], ["B1", "other.example",
                                       str(self.l["B1"][2]),
                                       self.arrival("B1")])
        self.assertRegex(rows[1][4], r"^3\ds$")
        self.assertEqual(rows[1][5:], ["1", "<>", "<Postmaster@Other.example>"])
        self.assertEqual(rows[2], ["A1", "remote.example",
                                   str(self.l["A1"][2]), self.arrival("A1"),
                                   "3h00m", "3", "<Alice@Example.NET>",
                                   "<u1@remote.example>",
                                   "<u2@remote.example>",
                                   "<u3@remote.example>"])
        self.assertEqual(rows[3], ["A2", "remote.example",
                                   str(self.l["A2"][2]), self.arrival("A2"),
                                   "2m", "1", "<bob@example.net>",
                                   "<r@remote.example>"])
        self.assertEqual(rows[4][:6], ["C1", "third.example",
                                       str(self.l["C1"][2]),
                                       self.arrival("C1"), "1h23m", "-"])
        self.assertIn("(malformed envelope: line 1: X-Envelope-To before "
                      "X-Envelope-From)", out.splitlines()[4])
        total = sum(self.l[i][2] for i in ("A1", "A2", "B1", "C1"))
        self.assertEqual(out.splitlines()[5], "-- %d KiB in 4 letters."
                         % ((total + 1023) // 1024))
        self.assertEqual(len(rows), 6)

    def test_list_total_and_empty(self):
        out, _ = self.run_inspect("list")
        self.assertEqual(out, "Mail queue is empty\n")
        out, _ = self.run_inspect("list", "--error")
        self.assertEqual(out, "No letter in error/\n")
        # 1 letter of 1025 bytes: rounded up to 2 KiB; singular.
        data = envelope("a@example.net", ["r@remote.example"]) + received("K1")
        self.t.letter("remote.example", "K1",
                      data=data + b"x" * (1025 - len(data)))
        out, _ = self.run_inspect("list")
        self.assertEqual(out.splitlines()[-1], "-- 2 KiB in 1 letter.")
        self.assertEqual(len(out.splitlines()), 3)
        # Filters that match nothing: no header, and not "empty".
        out, _ = self.run_inspect("list", "--from", "nobody")
        self.assertEqual(out, "No letter matches.\n")
        out, _ = self.run_inspect("list", "other.example")
        self.assertEqual(out, "No letter matches.\n")
        # The JSON is unchanged by the text's total line.
        doc, _ = self.run_json("list")
        self.assertEqual((doc["count"], doc["bytes"]), (1, 1025))

    def test_list_filters(self):
        self.make_queue()
        # --from: substring, any case; "<>" is the null sender.
        doc, _ = self.run_json("list", "--from", "alice@EXAMPLE")
        self.assertEqual(self.ids(doc), ["A1"])
        self.assertEqual(doc["filters"]["from"], "alice@EXAMPLE")
        doc, _ = self.run_json("list", "--from", "example.net")
        self.assertEqual(self.ids(doc), ["A1", "A2"])
        doc, _ = self.run_json("list", "--from", "<>")
        self.assertEqual(self.ids(doc), ["B1"])
        # --to: any recipient; a malformed letter never matches.
        doc, _ = self.run_json("list", "--to", "U2@")
        self.assertEqual(self.ids(doc), ["A1"])
        doc, _ = self.run_json("list", "--to", "postmaster")
        self.assertEqual(self.ids(doc), ["B1"])
        doc, _ = self.run_json("list", "--to", "r@third.example")
        self.assertEqual(self.ids(doc), [])
        # --older-than: strictly older; units and sums.
        doc, _ = self.run_json("list", "--older-than", "1h")
        self.assertEqual(self.ids(doc), ["A1", "C1"])
        self.assertEqual(doc["filters"]["older_than"], 3600)
        doc, _ = self.run_json("list", "--older-than", "1h30m")
        self.assertEqual(self.ids(doc), ["A1"])
        doc, _ = self.run_json("list", "--older-than", "90")
        self.assertEqual(self.ids(doc), ["A1", "A2", "C1"])
        doc, _ = self.run_json("list", "--older-than", "10s")
        self.assertEqual(self.ids(doc), ["B1", "A1", "A2", "C1"])
        doc, _ = self.run_json("list", "--older-than", "1d")
        self.assertEqual(self.ids(doc), [])
        # DOMAIN, in any case.
        doc, _ = self.run_json("list", "REMOTE.example")
        self.assertEqual(self.ids(doc), ["A1", "A2"])
        self.assertEqual(doc["filters"]["domain"], "remote.example")
        doc, _ = self.run_json("list", "nowhere.example")
        self.assertEqual(self.ids(doc), [])
        # --error: the letters in error/ instead.
        doc, _ = self.run_json("list", "--error")
        self.assertEqual(self.ids(doc), ["A3"])
        self.assertEqual(doc["letters"][0]["state"], "error")
        self.assertEqual(doc["letters"][0]["path"],
                         ".OTHER_SERVERS/remote.example/error/"
                         + self.l["A3"][0])
        # All together.
        doc, _ = self.run_json("list", "remote.example", "--from", "b",
                               "--to", "remote", "--older-than", "1m")
        self.assertEqual(self.ids(doc), ["A2"])

    def test_injected_envelope_is_message(self):
        """X-Envelope-To: lines a client wrote in its message (after the
        server's Received:) are not recipients."""
        data = (envelope("a@example.net", ["r@remote.example"])
                + received("INJ1")
                + b"X-Envelope-To: <evil@attacker.example>\n"
                + b"X-Envelope-From: <forged@example.net>\n\nbody\n")
        self.t.letter("remote.example", "INJ1", data=data)
        doc, _ = self.run_json("list")
        self.assertEqual(doc["letters"][0]["recipients"],
                         ["r@remote.example"])
        self.assertEqual(doc["letters"][0]["sender"], "a@example.net")
        doc, _ = self.run_json("list", "--to", "attacker")
        self.assertEqual(doc["letters"], [])
        out, _ = self.run_inspect("check")
        self.assertEqual(out, "no problems (1 letters checked)\n")

    def test_many_recipients(self):
        rcpts = ["user%d@remote.example" % i for i in range(1000)]
        self.t.letter("remote.example", "MANY", rcpts=rcpts)
        doc, _ = self.run_json("list")
        self.assertEqual(doc["letters"][0]["recipients"], rcpts)
        out, _ = self.run_inspect("list")
        self.assertEqual(self.table(out)[1][5], "1000")
        self.assertEqual(self.table(out)[1][7:],
                         ["<%s>" % r for r in rcpts])


class ShowTest(InspectTestCase):

    def test_show_text(self):
        msg = b"Subject: hi\nTo: x\n  folded\n\nline 1\n\nline 3\n"
        name, mtime, size = self.t.letter(
            "remote.example", "SHOW1", params="SIZE=99",
            rcpts=["a@remote.example", "b@remote.example"], message=msg,
            age=7260)
        out, err = self.run_inspect("show", "SHOW1")
        self.assertEqual(err, "")
        self.assertEqual(out, (
            "path: .OTHER_SERVERS/remote.example/%s\n"
            "id: SHOW1\n"
            "domain: remote.example\n"
            "state: queued\n"
            "size: %d\n"
            "age: 2h01m (%d s)\n"
            "attempts: 0\n"
            "next_attempt: now\n"
            "last_error: none\n"
            "sender: <a@example.net>\n"
            "params: SIZE=99\n"
            "recipient: <a@remote.example>\n"
            "recipient: <b@remote.example>\n"
            "\n" % (name, size, int(out.split("(")[1].split()[0])))
            + received("SHOW1").decode()
            + "Subject: hi\nTo: x\n  folded\n")
        out, _ = self.run_inspect("show", "SHOW1", "--body")
        self.assertTrue(out.endswith(received("SHOW1").decode()
                                     + msg.decode()), out)

    def test_show_json(self):
        msg = ("Subject: caf\u00e9\nTo: x\n\tfolded\n\nline 1\n\nend \u00e9\n"
               .encode("utf-8"))
        name, mtime, size = self.t.letter("remote.example", "SHOW2",
                                          message=msg, age=100)
        doc, _ = self.run_json("show", "SHOW2")
        self.assertEqual(doc["id"], "SHOW2")
        self.assertEqual(len(doc["letters"]), 1)
        x = doc["letters"][0]
        self.assertEqual(x["file"], name)
        self.assertEqual(x["size"], size)
        self.assertEqual(x["age"], doc["now"] - mtime)
        self.assertEqual(x["sender"], "a@example.net")
        self.assertEqual(x["recipients"], ["r@remote.example"])
        self.assertEqual(x["headers"], [
            received("SHOW2").decode().rstrip("\n"),
            "Subject: caf\u00e9", "To: x\n\tfolded"])
        self.assertIsNone(x["body"])
        doc, _ = self.run_json("show", "SHOW2", "--body")
        self.assertEqual(doc["letters"][0]["body"], "line 1\n\nend \u00e9\n")

    def test_show_every_copy(self):
        """One message for two domains (a file in each), one in error/."""
        self.t.letter("b.example", "MULTI1", age=50)
        self.t.letter("a.example", "MULTI1", age=50, error=True)
        self.t.letter("a.example", "OTHER1")
        doc, _ = self.run_json("show", "MULTI1")
        self.assertEqual([(x["domain"], x["state"]) for x in doc["letters"]],
                         [("a.example", "error"), ("b.example", "queued")])
        out, _ = self.run_inspect("show", "MULTI1")
        self.assertEqual(out.count("id: MULTI1\n"), 2)

    def test_show_malformed(self):
        self.t.letter("remote.example", "BAD1",
                      data=b"X-Envelope-From: <a@example.net>\n" + MESSAGE)
        doc, _ = self.run_json("show", "BAD1", "--body")
        x = doc["letters"][0]
        self.assertEqual(x["malformed"],
                         "line 2: expected X-Envelope-To")
        self.assertIsNone(x["headers"])
        self.assertIsNone(x["body"])
        out, _ = self.run_inspect("show", "BAD1")
        self.assertIn("malformed: line 2: expected X-Envelope-To\n", out)

    def test_show_escapes_c0_and_c1(self):
        """Text output is safe on a terminal: every C0 and C1 control -
        raw 0x80-0x9f (0x9b is the 8-bit CSI) and the UTF-8 of
        U+0080-U+009F - and every byte that is not valid UTF-8 becomes
        \\xHH; valid UTF-8 text stays readable."""
        hostile = (b"Subject: \x9b2J \x1b[31m \xc2\x9b \x85 \x07 caf\xc3\xa9 "
                   b"\xff \xe2\x82\xac\n")
        msg = hostile + b"\n\x90P body \x9d\xc2\x80 \x00\r end\n"
        self.t.letter("remote.example", "ESC1", message=msg)
        out, _ = self.run_inspect("show", "ESC1", "--body")
        raw = out.encode("utf-8", "surrogateescape")
        for byte in list(range(0x00, 0x09)) + list(range(0x0b, 0x20)) + \
                [0x7f] + list(range(0x80, 0xa0)):
            if byte in (0x82,):
                continue        # inside the UTF-8 of the euro sign
            self.assertNotIn(bytes([byte]), raw, hex(byte))
        self.assertIn("Subject: \\x9b2J \\x1b[31m \\xc2\\x9b \\x85 \\x07 "
                      "caf\u00e9 \\xff \u20ac\n", out)
        self.assertIn("\n\\x90P body \\x9d\\xc2\\x80 \\x00\\x0d end\n", out)
        out, _ = self.run_inspect("show", "ESC1")
        self.assertIn("Subject: \\x9b2J ", out)
        self.assertNotIn("\x9b", out)
        # JSON keeps the bytes (as \\u00XX where they are not UTF-8).
        doc, _ = self.run_json("show", "ESC1")
        self.assertEqual(doc["letters"][0]["headers"][1],
                         "Subject: \u009b2J \x1b[31m \u009b \u0085 \x07 "
                         "caf\u00e9 \u00ff \u20ac")

    def delivered(self, user, msgid, folder="new", age=0, flags=":2,S",
                  extra=b""):
        """A letter as the daemon delivers it to a local user."""
        self.t.user(user)
        name = "%d.%s.%s" % (self.t.now - age, msgid, HOST)
        if folder == "cur":
            name += flags
        data = (b"Return-Path: <a@example.net>\n"
                b"Delivered-To: %s@example.org\n" % user.encode()
                + received(msgid) + extra + MESSAGE)
        mtime = self.t.write(os.path.join(user, folder, name), data, age)
        return name, mtime, len(data)

    def test_show_delivered(self):
        """show ID also finds the copies delivered to local users (new/
        and cur/), marked as delivered; queue copies come first."""
        q = self.t.letter("remote.example", "LOC1", age=120)
        n = self.delivered("alice", "LOC1", age=120)
        c = self.delivered("bob", "LOC1", folder="cur", age=120,
                           extra=b"Delivered-To: forged@example.org\n")
        self.delivered("bob", "OTHER1")
        self.t.write("bob/new/.hidden.LOC1.x", b"x")
        self.t.write("bob/tmp/%d.LOC1.%s" % (self.t.now, HOST), b"x")
        doc, err = self.run_json("show", "LOC1")
        self.assertEqual(err, "")
        self.assertEqual([(x["state"], x["domain"], x["user"], x["folder"],
                           x["file"]) for x in doc["letters"]], [
            ("queued", "remote.example", None, None, q[0]),
            ("delivered", None, "alice", "new", n[0]),
            ("delivered", None, "bob", "cur", c[0])])
        x = doc["letters"][2]
        self.assertEqual(x["path"], "bob/cur/" + c[0])
        self.assertEqual((x["size"], x["mtime"]), (c[2], c[1]))
        self.assertEqual(x["age"], doc["now"] - c[1])
        self.assertEqual(x["sender"], "a@example.net")
        # Only the daemon's own lines, before its Received:, count.
        self.assertEqual(x["recipients"], ["bob@example.org"])
        self.assertIsNone(x["params"])
        self.assertIsNone(x["malformed"])
        self.assertEqual(x["headers"][:3], [
            "Return-Path: <a@example.net>",
            "Delivered-To: bob@example.org",
            received("LOC1").decode().rstrip("\n")])
        self.assertIsNone(x["body"])
        doc, _ = self.run_json("show", "LOC1", "--body")
        self.assertEqual(doc["letters"][1]["body"], "Hello.\n")

        out, _ = self.run_inspect("show", "LOC1")
        parts = out.split("\npath: ")
        self.assertEqual(len(parts), 3)
        self.assertEqual(parts[1], (
            "alice/new/%s\n"
            "id: LOC1\n"
            "user: alice\n"
            "folder: new\n"
            "state: delivered\n"
            "size: %d\n"
            "age: 2m (%d s)\n"
            "sender: <a@example.net>\n"
            "recipient: <alice@example.org>\n"
            "\n"
            "Return-Path: <a@example.net>\n"
            "Delivered-To: alice@example.org\n" % (
                n[0], n[2], int(parts[1].split("(")[1].split()[0])))
            + received("LOC1").decode()
            # (the empty line before the next "path:" is the split's)
            + "Subject: test\nFrom: <a@example.net>\n")
        self.assertIn("state: delivered\n", parts[2])
        self.assertIn("folder: cur\n", parts[2])
        # A message only delivered is found too; a configuration names
        # the users to look at.
        doc, _ = self.run_json("show", "OTHER1")
        self.assertEqual([x["user"] for x in doc["letters"]], ["bob"])
        conf = os.path.join(self.tmp, "c.conf")
        with open(conf, "w") as f:
            f.write('application = { maildir = { path = "%s"; }; };\n'
                    'local = { users = [ "alice" ];\n'
                    '  postmaster = "alice"; };\n' % self.t.root)
        doc, _ = self.run_json("-c", conf, "show", "LOC1", root=False)
        self.assertEqual([x["state"] for x in doc["letters"]],
                         ["queued", "delivered"])
        self.run_inspect("-c", conf, "show", "OTHER1", root=False, status=1)

    def test_show_not_found(self):
        self.t.letter("remote.example", "THERE1")
        out, err = self.run_inspect("show", "NOTHERE1", status=1)
        self.assertEqual(out, "")
        self.assertIn("NOTHERE1", err)
        doc, _ = self.run_json("show", "NOTHERE1", status=1)
        self.assertEqual(doc["letters"], [])


class AgesTest(InspectTestCase):

    def make_queue(self):
        t = self.t
        ages = {"r.example": [60, 7 * 60, 15 * 60, 30 * 60, 60 * 60,
                              120 * 60, 300 * 60, 86400],
                "s.example": [30, 40],
                "t.example": [9000]}
        for dom, lst in ages.items():
            for i, age in enumerate(lst):
                t.letter(dom, "ID%d" % i, age=age)
        t.letter("r.example", "ERR1", age=20, error=True)
        t.letter("u.example", "ERR2", age=20, error=True)

    def test_ages(self):
        """qshape's default: 10 buckets, T 5 10 20 ... 1280 1280+."""
        self.make_queue()
        doc, err = self.run_json("ages")
        self.assertEqual(err, "")
        self.assertEqual(doc["state"], "queued")
        self.assertEqual(doc["by"], "recipient")
        self.assertEqual([b["label"] for b in doc["buckets"]], BUCKETS)
        self.assertEqual([(b["from"], b["to"]) for b in doc["buckets"]], [
            (0, 300), (300, 600), (600, 1200), (1200, 2400), (2400, 4800),
            (4800, 9600), (9600, 19200), (19200, 38400), (38400, 76800),
            (76800, None)])
        # Most letters first (qshape), then by name.
        self.assertEqual(doc["domains"], [
            {"domain": "r.example", "total": 8,
             "counts": [1, 1, 1, 1, 1, 1, 1, 0, 0, 1]},
            {"domain": "s.example", "total": 2,
             "counts": [2, 0, 0, 0, 0, 0, 0, 0, 0, 0]},
            {"domain": "t.example", "total": 1,
             "counts": [0, 0, 0, 0, 0, 1, 0, 0, 0, 0]},
        ])
        self.assertEqual(doc["totals"], {
            "total": 11, "counts": [3, 1, 1, 1, 1, 2, 1, 0, 0, 1]})
        out, _ = self.run_inspect("ages")
        self.assertEqual(self.table(out), [
            ["DOMAIN"] + QSHAPE,
            ["TOTAL", "11", "3", "1", "1", "1", "1", "2", "1", "0", "0", "1"],
            ["r.example", "8", "1", "1", "1", "1", "1", "1", "1", "0", "0",
             "1"],
            ["s.example", "2", "2", "0", "0", "0", "0", "0", "0", "0", "0",
             "0"],
            ["t.example", "1", "0", "0", "0", "0", "0", "1", "0", "0", "0",
             "0"]])
        doc, _ = self.run_json("ages", "--error")
        self.assertEqual(doc["state"], "error")
        self.assertEqual(doc["domains"], [
            {"domain": "r.example", "total": 1, "counts": [1] + [0] * 9},
            {"domain": "u.example", "total": 1, "counts": [1] + [0] * 9}])

    def test_bucket_count(self):
        """-b N: N buckets, the last one open (qshape -b)."""
        self.make_queue()
        out, _ = self.run_inspect("ages", "-b", "3")
        self.assertEqual(self.table(out), [
            ["DOMAIN", "T", "5", "10", "10+"],
            ["TOTAL", "11", "3", "1", "7"],
            ["r.example", "8", "1", "1", "6"],
            ["s.example", "2", "2", "0", "0"],
            ["t.example", "1", "0", "0", "1"]])
        doc, _ = self.run_json("ages", "--buckets", "3")
        self.assertEqual([(b["label"], b["from"], b["to"])
                          for b in doc["buckets"]],
                         [("0-5m", 0, 300), ("5-10m", 300, 600),
                          ("10m+", 600, None)])
        self.assertEqual(doc["totals"], {"total": 11, "counts": [3, 1, 7]})
        doc, _ = self.run_json("ages", "-b", "1")
        self.assertEqual(doc["buckets"], [{"label": "0m+", "from": 0,
                                           "to": None}])
        self.assertEqual(doc["totals"], {"total": 11, "counts": [11]})
        doc, _ = self.run_json("ages", "-b", "12")
        self.assertEqual(doc["buckets"][-1], {"label": "5120m+",
                                              "from": 307200, "to": None})
        self.assertEqual(doc["totals"]["counts"],
                         [3, 1, 1, 1, 1, 2, 1, 0, 0, 1, 0, 0])
        for bad in ("0", "31", "x", "3x", "-1", ""):
            out, err = self.run_inspect("ages", "-b", bad, status=EX_USAGE)
            self.assertIn("bucket count", err)

    def test_by_sender(self):
        """-s: by the sender's domain (qshape -s); a message queued for
        two domains counts once; the null sender is MAILER-DAEMON."""
        t = self.t
        t.letter("a.example", "M1", sender="x@Big.Example", age=60)
        t.letter("b.example", "M1", sender="x@Big.Example", age=60)
        t.letter("a.example", "M2", sender="y@big.example", age=700)
        t.letter("a.example", "M3", sender="", age=3000)
        t.letter("c.example", "M4", sender="z@[192.0.2.1]", age=30)
        t.letter("c.example", "M5", data=b"garbage\n", age=30)
        t.letter("c.example", "M6", sender="q@small.example", age=30,
                 error=True)
        doc, err = self.run_json("ages", "-s")
        self.assertEqual(err, "")
        self.assertEqual(doc["by"], "sender")
        self.assertEqual([(d["domain"], d["total"], d["counts"][:5])
                          for d in doc["domains"]], [
            ("big.example", 2, [1, 0, 1, 0, 0]),
            ("(malformed)", 1, [1, 0, 0, 0, 0]),
            ("MAILER-DAEMON", 1, [0, 0, 0, 0, 1]),
            ("[192.0.2.1]", 1, [1, 0, 0, 0, 0])])
        self.assertEqual(doc["totals"]["total"], 5)
        out, _ = self.run_inspect("ages", "--sender")
        rows = self.table(out)
        self.assertEqual(rows[0], ["SENDER"] + QSHAPE)
        self.assertEqual(rows[1][:2], ["TOTAL", "5"])
        self.assertEqual([r[0] for r in rows[2:]],
                         ["big.example", "(malformed)", "MAILER-DAEMON",
                          "[192.0.2.1]"])
        doc, _ = self.run_json("ages", "-s", "--error", "-b", "2")
        self.assertEqual(doc["domains"], [
            {"domain": "small.example", "total": 1, "counts": [1, 0]}])

    def test_ages_options_belong_to_ages(self):
        for args in (["list", "-s"], ["summary", "-b", "3"],
                     ["show", "X1", "--sender"], ["check", "--buckets", "2"]):
            out, err = self.run_inspect(*args, status=EX_USAGE)
            self.assertIn("is not an option of", err)


class CheckTest(InspectTestCase):

    def test_clean_tree(self):
        self.t.letter("remote.example", "OK1")
        self.t.letter("remote.example", "OK2", error=True)
        self.t.user("alice", new=1)
        # A young file in tmp/ is a delivery in progress, not a problem.
        self.t.write(".OTHER_SERVERS/.tmp/%d.OK3.%s.0" % (self.t.now, HOST),
                     b"X-Env", age=3600)
        self.t.write("alice/tmp/young", b"x", age=35 * 3600)
        out, err = self.run_inspect("check")
        self.assertEqual((out, err), ("no problems (2 letters checked)\n", ""))
        doc, _ = self.run_json("check")
        self.assertEqual(doc["problems"], [])
        self.assertIs(doc["ok"], True)
        self.assertEqual(doc["letters"], 2)
        self.assertEqual(doc["stale_after"], 36 * 3600)

    def test_problems(self):
        t = self.t
        t.letter("remote.example", "GOOD1")
        # Stale tmp files: the queue's and a user's.
        t.write(".OTHER_SERVERS/.tmp/1.STALE1.x.0", b"X", age=37 * 3600)
        t.user("alice")
        t.write("alice/tmp/1.STALE2.x", b"X", age=3 * 86400)
        # Names that are not Maildir names.
        t.letter("remote.example", "X", name="junk")
        t.letter("remote.example", "X", name=".1.HIDDEN.x")
        t.letter("remote.example", "X", name="1.FLAGGED.x:2,S")
        t.letter("remote.example", "X", name="1.B-AD.x", error=True)
        # Malformed envelopes.
        t.letter("remote.example", "M1",
                 data=b"X-Envelope-To: <r@remote.example>\n" + received("M1"))
        t.letter("remote.example", "M2",
                 data=envelope("a@example.net", ["r@remote.example"])
                 + MESSAGE)
        t.letter("remote.example", "M3",
                 data=envelope("a@example.net", [])
                 + received("M3") + MESSAGE)
        t.letter("remote.example", "M4", data=b"X-Envelope-From: <a@exa")
        t.letter("remote.example", "M5",
                 data=b"X-Envelope-From: <a@example.net>\r\n"
                 b"X-Envelope-To: <r@remote.example>\r\n" + received("M5"))
        t.letter("remote.example", "M6",
                 data=b"X-Envelope-From: <a@example.net> "
                 + b"X" * 1200 + b"\n")
        t.letter("remote.example", "M7", data=b"", error=True)
        # A recipient of another domain.
        t.letter("remote.example", "W1",
                 rcpts=["r@remote.example", "x@elsewhere.example"])
        # Unknown entries and bad domains.
        os.makedirs(t.path(".OTHER_SERVERS", "remote.example", "subdir"))
        os.mkfifo(t.path(".OTHER_SERVERS", "remote.example", "1.FIFO.x"))
        t.write(".OTHER_SERVERS/stray-file", b"x")
        os.makedirs(t.path(".OTHER_SERVERS", ".other"))
        os.makedirs(t.path(".OTHER_SERVERS", "UPPER.example"))
        os.makedirs(t.path(".OTHER_SERVERS", "noerror.example"))
        os.makedirs(t.path("notamaildir"))

        doc, err = self.run_json("check", status=1)
        self.assertEqual(err, "")
        self.assertIs(doc["ok"], False)
        self.assertEqual(doc["letters"], 9)
        R = ".OTHER_SERVERS/remote.example/"
        expected = [
            ("unknown-entry", ".OTHER_SERVERS/.other",
             "not a domain directory"),
            ("stale-tmp", ".OTHER_SERVERS/.tmp/1.STALE1.x.0",
             "left in tmp/ for 1d13h"),
            ("bad-domain", ".OTHER_SERVERS/UPPER.example",
             "not a lower-case domain name"),
            ("missing-error-dir", ".OTHER_SERVERS/noerror.example",
             "no error/ directory"),
            ("bad-name", R + ".1.HIDDEN.x",
             "not a Maildir name SECONDS.ID.HOST"),
            ("unknown-entry", R + "1.FIFO.x", "not a regular file"),
            ("bad-name", R + "1.FLAGGED.x:2,S",
             "not a Maildir name SECONDS.ID.HOST"),
            ("bad-name", R + "error/1.B-AD.x",
             "not a Maildir name SECONDS.ID.HOST"),
            ("bad-name", R + "junk", "not a Maildir name SECONDS.ID.HOST"),
            ("unknown-entry", R + "subdir", "not a regular file"),
            ("unknown-entry", ".OTHER_SERVERS/stray-file",
             "not a directory"),
            ("stale-tmp", "alice/tmp/1.STALE2.x", "left in tmp/ for 3d00h"),
            ("unknown-entry", "notamaildir", "not a Maildir"),
        ]
        got = [(p["kind"], p["path"], p["detail"]) for p in doc["problems"]]
        # The names of letters carry SECONDS: look them up by ID.
        by_id = {}
        for kind, path, detail in got:
            parts = os.path.basename(path).split(".")
            if kind in ("malformed-envelope", "wrong-domain"):
                by_id[parts[1]] = (kind, detail)
        self.assertEqual(by_id, {
            "M1": ("malformed-envelope",
                   "line 1: X-Envelope-To before X-Envelope-From"),
            "M2": ("malformed-envelope", "line 3: expected X-Envelope-To "
                   "or Received: after the envelope"),
            "M3": ("malformed-envelope",
                   "line 2: no X-Envelope-To before Received:"),
            "M4": ("malformed-envelope", "line 1: the file ends inside "
                   "a line"),
            "M5": ("malformed-envelope", "line 1: CR in the envelope "
                   "(lines end in LF alone)"),
            "M6": ("malformed-envelope", "line 1: longer than 1000 octets"),
            "M7": ("malformed-envelope", "the file is empty"),
            "W1": ("wrong-domain",
                   "recipient <x@elsewhere.example> is not in "
                   "remote.example"),
        })
        rest = [g for g in got
                if g[0] not in ("malformed-envelope", "wrong-domain")]
        self.assertEqual(rest, expected)
        # Sorted by path.
        self.assertEqual([p["path"] for p in doc["problems"]],
                         sorted(p["path"] for p in doc["problems"]))

        out, err = self.run_inspect("check", status=1)
        lines = out.splitlines()
        self.assertEqual(lines[-1], "21 problems (9 letters checked)")
        self.assertEqual(len(lines), 22)
        self.assertIn("stale-tmp: alice/tmp/1.STALE2.x: left in tmp/ for "
                      "3d00h", lines)
        self.assertIn("bad-domain: .OTHER_SERVERS/UPPER.example: not a "
                      "lower-case domain name", lines)

    def test_config_users(self):
        """With a configuration, a user without a Maildir and a directory
        that is no configured user's are problems."""
        self.t.user("alice")
        self.t.user("olduser")
        os.makedirs(self.t.path("bob", "new"))
        conf = os.path.join(self.tmp, "c.conf")
        with open(conf, "w") as f:
            f.write('application = { maildir = { path = "%s"; }; };\n'
                    'local = { users = [ "alice", "bob", "carol" ];\n'
                    '  postmaster = "alice"; };\n' % self.t.root)
        doc, _ = self.run_json("-c", conf, "check", root=False, status=1)
        self.assertEqual([(p["kind"], p["path"]) for p in doc["problems"]], [
            ("missing-maildir", "bob/cur"),
            ("missing-maildir", "bob/tmp"),
            ("missing-maildir", "carol"),
            ("unknown-entry", "olduser")])

    def test_hostile_names_are_escaped(self):
        """Names with control and 8-bit bytes: text escapes them, JSON
        stays valid JSON."""
        d = self.t.path(".OTHER_SERVERS", "remote.example")
        self.t.domain("remote.example")
        with open(os.path.join(d.encode(), b"bad\x1b[31m\xff"), "wb") as f:
            f.write(b"x")
        out, _ = self.run_inspect("check", status=1)
        self.assertIn("bad-name: .OTHER_SERVERS/remote.example/"
                      "bad\\x1b[31m\\xff: ", out)
        self.assertNotIn("\x1b", out)
        doc, _ = self.run_json("check", status=1)
        self.assertEqual(doc["problems"][0]["path"],
                         ".OTHER_SERVERS/remote.example/bad\x1b[31m\u00ff")

    def test_unreadable(self):
        if os.geteuid() == 0:
            self.skipTest("root reads every file")
        self.t.letter("remote.example", "OK1")
        name, _, _ = self.t.letter("remote.example", "LOCKED1")
        p = self.t.path(".OTHER_SERVERS", "remote.example", name)
        os.chmod(p, 0)
        out, err = self.run_inspect("list", status=EX_IOERR)
        self.assertIn("Permission denied", err)
        self.assertIn("OK1", out)
        doc, _ = self.run_json("check", status=1)
        self.assertEqual([p["kind"] for p in doc["problems"]],
                         ["unreadable"])


class VanishingTest(InspectTestCase):

    def test_files_vanish_while_scanning(self):
        """Letters removed mid-scan (delivered) are not errors."""
        n = 3000
        for i in range(n):
            self.t.letter("remote.example", "V%d" % i)
        d = self.t.path(".OTHER_SERVERS", "remote.example")
        names = sorted(x for x in os.listdir(d) if x != "error")
        stop = threading.Event()

        def remover():
            for x in names:
                if stop.is_set():
                    return
                os.unlink(os.path.join(d, x))
                time.sleep(0.0001)

        th = threading.Thread(target=remover)
        th.start()
        try:
            for _ in range(30 if not VALGRIND else 3):
                if not th.is_alive():
                    break
                for args in (["list"], ["summary"], ["check"]):
                    out, err = self.run_inspect(*args)
                    self.assertEqual(err, "")
        finally:
            stop.set()
            th.join()


class UsageTest(InspectTestCase):

    def test_help_and_version(self):
        for opt in ("-h", "--help"):
            out, err = self.run_inspect(opt, root=False)
            self.assertTrue(out.startswith("usage: maildir-inspect"), out)
            for word in ("summary", "list", "show", "ages", "check",
                         "--json", "--from", "--to", "--older-than",
                         "--error", "--body", "-c", "-d"):
                self.assertIn(word, out)
        for opt in ("-V", "--version"):
            out, _ = self.run_inspect(opt, root=False)
            self.assertRegex(out, r"^maildir-inspect \(pollsmtpd\) \S+\n$")

    def test_usage_errors(self):
        bad = [
            ["frobnicate"],
            ["summary", "extra"],
            ["show"],
            ["show", "A", "B"],
            ["show", "../etc/passwd"],
            ["show", "ABC", "--from", "x"],
            ["list", "a", "b"],
            ["list", "../../etc"],
            ["list", "--body"],
            ["list", "--older-than", "soon"],
            ["list", "--older-than", "1h30"],
            ["list", "--older-than"],
            ["summary", "--error"],
            ["check", "--to", "x"],
            ["--bogus"],
        ]
        for args in bad:
            out, err = self.run_inspect(*args, status=EX_USAGE)
            self.assertEqual(out, "")
            self.assertIn("maildir-inspect: ", err)
        out, err = self.run_inspect("-c", "/x", "summary", status=EX_USAGE)
        self.assertIn("-c and -d", err)

    def test_exit_status_survives_a_failed_warning(self):
        """The exit status comes from the error, not from errno after
        the warning was written (stderr on a full disk)."""
        missing = os.path.join(self.tmp, "nothing")
        with open("/dev/full", "w") as full:
            p = subprocess.run([self.binary, "-d", missing, "summary"],
                               stdin=subprocess.DEVNULL,
                               stdout=subprocess.PIPE, stderr=full,
                               timeout=60)
        self.assertEqual(p.returncode, EX_NOINPUT)
        self.assertEqual(p.stdout, b"")
        # Output that cannot be written: EX_IOERR, and the reason.
        with open("/dev/full", "w") as full:
            p = subprocess.run([self.binary, "-d", self.t.root, "summary"],
                               stdin=subprocess.DEVNULL, stdout=full,
                               stderr=subprocess.PIPE, timeout=60)
        self.assertEqual(p.returncode, EX_IOERR)
        self.assertIn(b"cannot write the output: No space left on device",
                      p.stderr)

    def test_config_errors(self):
        out, err = self.run_inspect("-c", os.path.join(self.tmp, "none"),
                                    root=False, status=EX_CONFIG)
        self.assertIn("none", err)
        bad = os.path.join(self.tmp, "bad.conf")
        with open(bad, "w") as f:
            f.write("application = { maildir = { path = 42; }; };\n")
        out, err = self.run_inspect("-c", bad, root=False, status=EX_CONFIG)
        self.assertIn("bad.conf:1", err)
        self.assertEqual(out, "")
        # A configuration whose root is missing: no input.
        good = os.path.join(self.tmp, "good.conf")
        with open(good, "w") as f:
            f.write('application = { maildir = { path = "%s"; }; };\n'
                    % os.path.join(self.tmp, "missing"))
        self.run_inspect("-c", good, root=False, status=EX_NOINPUT)


def daemon_available():
    path = os.environ.get("POLLSMTPD") or os.path.join(
        HERE, "..", "..", "src", "pollsmtpd", "pollsmtpd")
    return os.access(path, os.X_OK)


@unittest.skipUnless(daemon_available(), "pollsmtpd not built")
class DaemonQueueTest(InspectTestCase):
    """What the real daemon queues, maildir-inspect reads."""

    def test_relayed_message(self):
        import harness
        with harness.Daemon() as d:
            with d.client() as c:
                c.hello()
                reply = c.transaction(
                    "sender@client.example",
                    ["one@remote.example", "two@remote.example",
                     "three@far.example", "alice@example.org"],
                    harness.smtp_data(
                        "Subject: relayed\n"
                        "X-Envelope-To: <evil@attacker.example>\n"
                        "\nHello.\n"))
                self.assertEqual(reply.code, 250, reply)
                msgid = reply.queued_id()
            root = d.root
            doc, _ = self.run_json("-c", d.conf_path, "summary", root=False)
            self.assertEqual([(x["domain"], x["queued"], x["error"])
                              for x in doc["domains"]],
                             [("far.example", 1, 0),
                              ("remote.example", 1, 0)])
            self.assertEqual([(u["user"], u["new"], u["cur"])
                              for u in doc["users"]],
                             [("alice", 1, 0), ("bob", 0, 0)])
            doc, _ = self.run_json("list", root=root)
            self.assertEqual([(x["id"], x["domain"], x["sender"],
                               x["recipients"], x["malformed"])
                              for x in doc["letters"]], [
                (msgid, "far.example", "sender@client.example",
                 ["three@far.example"], None),
                (msgid, "remote.example", "sender@client.example",
                 ["one@remote.example", "two@remote.example"], None)])
            doc, _ = self.run_json("show", msgid, root=root)
            self.assertEqual([(x["state"], x["domain"], x["user"])
                              for x in doc["letters"]], [
                ("queued", "far.example", None),
                ("queued", "remote.example", None),
                ("delivered", None, "alice")])
            local = doc["letters"][2]
            self.assertEqual((local["sender"], local["recipients"]),
                             ("sender@client.example",
                              ["alice@example.org"]))
            self.assertEqual(local["path"], "alice/new/" + local["file"])
            hdrs = doc["letters"][1]["headers"]
            self.assertRegex(hdrs[0], harness.received_re(
                harness.HELO, "127.0.0.1", msgid))
            self.assertEqual(hdrs[1:], ["Subject: relayed",
                                        "X-Envelope-To: "
                                        "<evil@attacker.example>"])
            out, _ = self.run_inspect("check", root=root)
            self.assertEqual(out, "no problems (2 letters checked)\n")


if __name__ == "__main__":
    unittest.main()
