#!/usr/bin/env python3
"""report.py - the table of bench/run: medians of the raw results.

usage: report.py RESULTS.tsv

RESULTS.tsv has one tab-separated record a line, written by bench/run:
  info  KEY  VALUE
  rate  MODE  SERVER  WORKLOAD  RUN  ACCEPTED/S  ONDISK/S  CPU_US/MSG  MS/MSG
  idle  SERVER  CONNS  RUN  RSS_BYTES  PROBE_MS  [ANSWER_MS  ANSWER_MAX_MS
        CPU_PCT  MODE]
  datarss  SERVER  RUN  CLIENTS  MIB  BEFORE_BYTES  DURING_BYTES
        PER_CLIENT_BYTES  MODE
  outbound  MODE  SERVER  RUN  LETTERS/S  CPU_US/LETTER  SECONDS  ARRIVED
        LEFT  LOAD1  LETTERS
  fail  WHAT
Every figure printed is the median over RUN. ONDISK/S is "-" for
smtp-sink, which stores nothing. An idle record without MODE (older
results) was measured on the disk with fsync on. SERVER "baseline" is the
--baseline binary of bench/run, compared with pollsmtpd in every table.

The last table holds the figures against the targets of doc/performance.md
(issue 16: idle connections): a new client with 5,000 and 10,000 idle, the
answer of an idle connection, CPU with 10,000 idle, RSS per idle
connection, and with a baseline the throughput of 20 x 1/conn x 4K and
20 reuse x 4K against it.
"""

import collections
import statistics
import sys

SERVERS = ["pollsmtpd", "baseline", "smtp-sink", "Postfix"]
IDLE_SERVERS = ["pollsmtpd", "pollsmtpd TLS", "baseline", "smtp-sink"]
IDLE_DEFAULT_MODE = "disk, fsync on"
PROMPT_MS = 100.0		# a new client counts as served promptly below this


def median(values):
    values = [v for v in values if v is not None]
    return statistics.median(values) if values else None


def num(text):
    return None if text in ("-", "") else float(text)


def fmt(value, digits=0):
    if value is None:
        return "-"
    return "{:,.{d}f}".format(value, d=digits)


def ratio(a, b, digits=2):
    if a is None or b is None or b == 0:
        return "-"
    return "%.*f" % (digits, a / b)


def targets(summary, rate_medians):
    """The figures of pollsmtpd against the targets of issue 16."""
    lines = []

    def check(what, value, limit, unit, digits=2):
        if value is None:
            return
        lines.append("%-50s %9s %-5s %-9s %s" % (
            what, fmt(value, digits), unit, "<= %s" % fmt(limit, digits),
            "met" if value <= limit else "NOT MET"))

    for (mode, server, conns), m in sorted(summary.items()):
        if server != "pollsmtpd" or conns == 0:
            continue
        if conns in (5000, 10000):
            check("new client, %d idle (%s)" % (conns, mode), m[1],
                  3.0 if conns == 5000 else 4.0, "ms")
        check("idle answered, largest, %d idle (%s)" % (conns, mode), m[3],
              25.0, "ms")
        if m[4] is not None:
            check("CPU, %d idle, no traffic (%s)" % (conns, mode), m[4],
                  1.0, "%")
        if conns == max(c for _, s_, c in summary if s_ == server):
            check("RSS per idle connection, %d (%s)" % (conns, mode), m[5],
                  1024.0, "bytes", 0)
    for (mode, wl), med in sorted(rate_medians.items()):
        if wl not in ("20 x 1/conn x 4K", "20 reuse x 4K"):
            continue
        if "baseline" in med and med["baseline"][0]:
            lines.append("%-50s %9s %-5s %-9s %s" % (
                "%s vs baseline (%s)" % (wl, mode),
                ratio(med["pollsmtpd"][0], med["baseline"][0]), "x",
                ">= 0.95", "met" if med["pollsmtpd"][0]
                >= 0.95 * med["baseline"][0] else "NOT MET"))
    if lines:
        print()
        print("== targets (doc/performance.md, idle connections) ==")
        for line in lines:
            print(line)


def datarss_table(datarss):
    """Memory while clients are in DATA (issue 10: at most 64 KiB a
    client); the whole process tree of each server."""
    if not datarss:
        return
    print()
    print("== DATA memory (RSS of the server's process tree; clients in "
          "DATA, not at the dot) ==")
    print("%-10s %8s %8s %11s %11s %14s %7s" % ("server", "clients", "MiB",
          "before KiB", "during KiB", "KiB a client", "target"))
    for (mode, server, n, mib) in sorted(datarss, key=lambda k: (
            k[0], SERVERS.index(k[1]) if k[1] in SERVERS else 9)):
        rows = datarss[(mode, server, n, mib)]
        m = [median([row[i] for row in rows]) for i in range(3)]
        per = m[2] / 1024 if m[2] is not None else None
        verdict = "-"
        if server == "pollsmtpd" and per is not None:
            verdict = "met" if per <= 64 else "MISSED"
        print("%-10s %8d %8d %11s %11s %14s %7s" % (server, n, mib,
              fmt(m[0] / 1024 if m[0] is not None else None),
              fmt(m[1] / 1024 if m[1] is not None else None),
              fmt(per, 1), verdict))


def outbound_table(outbound):
    """The outbound row (bench/outbound.sh): a queue of letters for one
    domain delivered to smtp-sink through the relay host; the targets of
    issue 14: at least 2x Postfix's letters/s, at most 0.3x its CPU."""
    if not outbound:
        return
    for mode in sorted({k[0] for k in outbound}):
        print()
        print("== outbound, %s (letters queued for one domain, relayhost "
              "-> smtp-sink; until the queue is empty) ==" % mode)
        print("%-18s %8s %10s %14s %9s %9s %10s" % ("server", "letters",
              "letters/s", "CPU us/letter", "seconds", "at sink",
              "load avg"))
        med = {}
        for server in SERVERS:
            rows = outbound.get((mode, server))
            if not rows:
                continue
            m = [median([row[i] for row in rows]) for i in range(5)]
            med[server] = m
            print("%-18s %8s %10s %14s %9s %9s %10s" % (server,
                  fmt(rows[0][5]), fmt(m[0]), fmt(m[1]), fmt(m[2], 2),
                  fmt(m[3]), fmt(m[4], 2)))
        p, q = med.get("pollsmtpd"), med.get("Postfix")
        if p is None or q is None:
            continue
        print("%-18s %8s %10s %14s" % ("pollsmtpd/Postfix", "",
              ratio(p[0], q[0]), ratio(p[1], q[1], 3)))
        print("target: letters/s >= 2x Postfix: %s; CPU per letter <= 0.3x "
              "Postfix: %s" % (
                  "met" if p[0] and q[0] and p[0] >= 2 * q[0] else "NOT MET",
                  "met" if p[1] is not None and q[1]
                  and p[1] <= 0.3 * q[1] else "NOT MET"))


def main(path):
    info = collections.OrderedDict()
    rates = collections.defaultdict(list)	# (mode, server, wl) -> [rows]
    idles = collections.defaultdict(list)	# (mode, server, conns) -> [rows]
    idle_modes = []
    datarss = collections.defaultdict(list)	# (mode, server, n, mib) -> rows
    outbound = collections.defaultdict(list)	# (mode, server) -> rows
    modes, workloads, fails = [], [], []
    with open(path) as f:
        for line in f:
            r = line.rstrip("\n").split("\t")
            if r[0] == "info":
                info[r[1]] = r[2]
            elif r[0] == "rate":
                mode, server, wl = r[1], r[2], r[3]
                if mode not in modes:
                    modes.append(mode)
                if wl not in workloads:
                    workloads.append(wl)
                rates[(mode, server, wl)].append([num(x) for x in r[5:9]])
            elif r[0] == "idle":
                mode = r[9] if len(r) > 9 else IDLE_DEFAULT_MODE
                if mode not in idle_modes:
                    idle_modes.append(mode)
                vals = [num(x) for x in r[4:9]] + [None] * (9 - len(r))
                idles[(mode, r[1], int(r[2]))].append(vals)
            elif r[0] == "datarss":
                datarss[(r[8], r[1], int(r[3]), int(r[4]))].append(
                    [num(x) for x in r[5:8]])
            elif r[0] == "outbound":
                # letters/s, CPU, seconds, at the sink, load; letters
                row = [num(r[4]), num(r[5]), num(r[6]), num(r[7]),
                       num(r[9])]
                row.append(num(r[10]) if len(r) > 10 else None)
                outbound[(r[1], r[2])].append(row)
            elif r[0] == "fail":
                fails.append(r[1])

    for k, v in info.items():
        print("%-10s %s" % (k + ":", v))
    print("Figures: median of %s runs. accepted/s: messages / time until "
          "smtp-source (TLS:" % info.get("runs", "?"))
    print("tls-source, a STARTTLS per connection) ended;")
    print("on disk/s: files in the Maildir / time until the last one was "
          "there; CPU: server")
    print("(all its processes) microseconds per message; ms/msg: wall "
          "time per message.")
    rate_medians = {}
    for mode in modes:
        print()
        print("== %s ==" % mode)
        print("%-22s %-16s %11s %10s %11s %8s" % ("workload", "server",
              "accepted/s", "on disk/s", "CPU us/msg", "ms/msg"))
        for wl in workloads:
            med = {}
            first = True
            for server in SERVERS:
                rows = rates.get((mode, server, wl))
                if not rows:
                    continue
                m = [median([row[i] for row in rows]) for i in range(4)]
                med[server] = m
                print("%-22s %-16s %11s %10s %11s %8s" % (
                    wl if first else "", server, fmt(m[0]), fmt(m[1]),
                    fmt(m[2]), fmt(m[3], 2)))
                first = False
            p = med.get("pollsmtpd")
            if p is None:
                continue
            rate_medians[(mode, wl)] = med
            if "baseline" in med:
                b = med["baseline"]
                print("%-22s %-16s %11s %10s %11s" % ("",
                      "pollsmtpd/base", ratio(p[0], b[0]),
                      ratio(p[1], b[1]), ratio(p[2], b[2])))
            if "smtp-sink" in med:
                s = med["smtp-sink"]
                print("%-22s %-16s %11s %10s %11s" % ("", "pollsmtpd/sink",
                      ratio(p[0], s[0]), "", ratio(p[2], s[2])))
            if "Postfix" in med:
                q = med["Postfix"]
                print("%-22s %-16s %11s %10s %11s" % ("",
                      "pollsmtpd/Postfix", ratio(p[0], q[0]),
                      ratio(p[1], q[1]), ratio(p[2], q[2], 3)))

    summary = {}
    for mode in idle_modes:
        print()
        print("== idle connections, %s (RSS of the server process; a new "
              "client's transaction meanwhile;" % mode)
        print("   an idle one's NOOP answered while a client delivers: "
              "median / largest of 20; CPU with no traffic) ==")
        print("%-14s %6s %9s %10s %13s %17s %7s" % ("server", "conns",
              "RSS KiB", "bytes/conn", "new client ms", "idle answered ms",
              "CPU %"))
        for server in IDLE_SERVERS:
            base = median([row[0] for row in
                           idles.get((mode, server, 0), [])])
            for conns in sorted(c for m, s_, c in idles
                                if m == mode and s_ == server):
                rows = idles[(mode, server, conns)]
                m = [median([row[i] for row in rows]) for i in range(5)]
                per = None
                if conns > 0 and m[0] is not None and base is not None:
                    per = (m[0] - base) / conns
                answered = "-"
                if m[2] is not None:
                    answered = "%s / %s" % (fmt(m[2], 2), fmt(m[3], 2))
                print("%-14s %6d %9s %10s %13s %17s %7s" % (server, conns,
                      fmt(m[0] / 1024 if m[0] is not None else None),
                      fmt(per), fmt(m[1], 2) if conns else "-", answered,
                      fmt(m[4], 2)))
                summary[(mode, server, conns)] = m + [per]
    datarss_table(datarss)
    outbound_table(outbound)
    targets(summary, rate_medians)
    if fails:
        print()
        for f in fails:
            print("FAILED: %s" % f)
        return 1
    return 0


if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.stderr.write(__doc__)
        sys.exit(64)
    sys.exit(main(sys.argv[1]))
