"""test_load - 200 simultaneous clients: all connect first, then each
delivers one distinct message; all 200 get 250 and all 200 files land with
the right bytes. Bounded in time: a stuck client fails the test."""

import threading
import time
import unittest

from harness import Client, DaemonTestCase, HELO, SLOW, smtp_data

N = 200
DEADLINE = 60 * SLOW


def body(i):
    return (b"From: client%d@x.example\nSubject: load %d\n\n"
            b".dot line %d\n" % (i, i, i) + (b"line of client %d\n" % i) * 20)


class Load(DaemonTestCase):

    def test_200_simultaneous_clients(self):
        results = [None] * N
        errors = [None] * N
        connected = threading.Barrier(N + 1, timeout=DEADLINE)

        def client(i):
            c = None
            try:
                c = Client(("127.0.0.1", self.d.port), timeout=DEADLINE)
                c.expect(220)
                connected.wait()
                c.send(b"EHLO %s\r\n" % HELO.encode())
                c.expect(250)
                rcpt = "alice" if i % 2 == 0 else "bob"
                r = c.transaction("client%d@x.example" % i,
                                  [rcpt + "@example.org"], smtp_data(body(i)))
                if r.code != 250 or r.enhanced != "2.0.0":
                    raise AssertionError("client %d: %r" % (i, r))
                results[i] = (rcpt, r.queued_id())
                c.expect_ok("QUIT", 221, "2.0.0")
            except BaseException as e:  # reported below, by client number
                errors[i] = repr(e)
                try:
                    connected.abort()
                except threading.BrokenBarrierError:
                    pass
            finally:
                if c:
                    c.close()

        threads = [threading.Thread(target=client, args=(i,), daemon=True)
                   for i in range(N)]
        started = time.monotonic()
        for t in threads:
            t.start()
        try:
            connected.wait()    # all 200 are connected and greeted
        except threading.BrokenBarrierError:
            pass
        for t in threads:
            t.join(max(0.1, started + DEADLINE - time.monotonic()))
        stuck = [i for i, t in enumerate(threads) if t.is_alive()]
        self.assertEqual(stuck, [], "clients still running after %d s"
                         % DEADLINE)
        failed = [(i, e) for i, e in enumerate(errors) if e]
        self.assertEqual(failed, [], "%d clients failed, first: %r"
                         % (len(failed), failed[:3]))

        ids = [r[1] for r in results]
        self.assertEqual(len(set(ids)), N, "queue IDs are not unique")
        self.assertEqual(len(self.d.files("alice")), N // 2)
        self.assertEqual(len(self.d.files("bob")), N // 2)
        self.assertEqual(self.d.files("alice", "tmp") +
                         self.d.files("bob", "tmp"), [])
        for i, (rcpt, msgid) in enumerate(results):
            self.assertDelivered(rcpt, msgid, "client%d@x.example" % i,
                                 rcpt + "@example.org", body(i))


if __name__ == "__main__":
    unittest.main()
