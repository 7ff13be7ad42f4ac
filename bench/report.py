#!/usr/bin/env python3
"""report.py - the table of bench/run: medians of the raw results.

usage: report.py RESULTS.tsv

RESULTS.tsv has one tab-separated record a line, written by bench/run:
  info  KEY  VALUE
  rate  MODE  SERVER  WORKLOAD  RUN  ACCEPTED/S  ONDISK/S  CPU_US/MSG  MS/MSG
  idle  SERVER  CONNS  RUN  RSS_BYTES  PROBE_MS
  fail  WHAT
Every figure printed is the median over RUN. ONDISK/S is "-" for
smtp-sink, which stores nothing.
"""

import collections
import statistics
import sys

SERVERS = ["pollsmtpd", "smtp-sink", "Postfix"]
IDLE_SERVERS = ["pollsmtpd", "pollsmtpd TLS", "smtp-sink"]
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


def main(path):
    info = collections.OrderedDict()
    rates = collections.defaultdict(list)	# (mode, server, wl) -> [rows]
    idles = collections.defaultdict(list)	# (server, conns) -> [rows]
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
                idles[(r[1], int(r[2]))].append([num(x) for x in r[4:6]])
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
            if "smtp-sink" in med:
                s = med["smtp-sink"]
                print("%-22s %-16s %11s %10s %11s" % ("", "pollsmtpd/sink",
                      ratio(p[0], s[0]), "", ratio(p[2], s[2])))
            if "Postfix" in med:
                q = med["Postfix"]
                print("%-22s %-16s %11s %10s %11s" % ("",
                      "pollsmtpd/Postfix", ratio(p[0], q[0]),
                      ratio(p[1], q[1]), ratio(p[2], q[2], 3)))

    if idles:
        print()
        print("== idle connections (RSS of the server process; a new client "
              "does a whole transaction meanwhile) ==")
        print("%-14s %7s %12s %11s %14s" % ("server", "conns", "RSS KiB",
              "bytes/conn", "new client ms"))
        for server in IDLE_SERVERS:
            base = median([row[0] for row in idles.get((server, 0), [])])
            for conns in sorted(c for s, c in idles if s == server):
                rows = idles[(server, conns)]
                size = median([row[0] for row in rows])
                ms = median([row[1] for row in rows])
                per = None
                if conns > 0 and size is not None and base is not None:
                    per = (size - base) / conns
                prompt = ""
                if conns > 0 and ms is not None:
                    prompt = " (%s)" % ("prompt" if ms < PROMPT_MS
                                        else "SLOW")
                print("%-14s %7d %12s %11s %14s%s" % (server, conns,
                      fmt(size / 1024 if size is not None else None),
                      fmt(per), fmt(ms, 2) if conns else "-", prompt))
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
