#!/usr/bin/env python3
"""Instructions per forwarded hop from several callgrind windows of one
build (agent/benches/callgrind_window.sh, short and long windows at one
rate): the two-window difference of each short/long pair, and a least-squares
fit of window = fixed + per_ball * balls + per_hop * forwarded over all of
them. Each window counts OUT.out.1 (dumped at the row) plus OUT.out (the
rest, to the exit; the whole window when the dump at the row missed).

    callgrind_fit.py PREFIX     # reads PREFIX*_short.txt / PREFIX*_long.txt
"""

import glob
import os
import re
import sys

ROW = re.compile(r"(\d+)\+\d+/(\d+) .*?, (\d+) forwarded")


def summary(path):
    for line in open(path):
        if line.startswith("summary:"):
            return int(line.split()[1])
    return 0


def windows(prefix):
    rows = []
    for txt in sorted(glob.glob(f"{prefix}*_*.txt")):
        base = txt[:-4]
        m = ROW.search(open(txt).read())
        if not m:
            continue
        ir = sum(summary(base + ext) for ext in (".out.1", ".out") if os.path.exists(base + ext))
        rows.append((base, int(m.group(2)), int(m.group(3)), ir))
    return rows


def solve(m, v):
    n = len(v)
    for i in range(n):
        p = max(range(i, n), key=lambda r: abs(m[r][i]))
        m[i], m[p], v[i], v[p] = m[p], m[i], v[p], v[i]
        for r in range(i + 1, n):
            f = m[r][i] / m[i][i]
            m[r] = [a - f * b for a, b in zip(m[r], m[i])]
            v[r] -= f * v[i]
    x = [0.0] * n
    for i in reversed(range(n)):
        x[i] = (v[i] - sum(m[i][c] * x[c] for c in range(i + 1, n))) / m[i][i]
    return x


def main():
    rows = windows(sys.argv[1])
    for base, balls, hops, ir in rows:
        print(f"{os.path.basename(base)}: {balls} balls, {hops} forwarded, {ir:,} Ir")
    shorts = [r for r in rows if r[0].endswith("_short")]
    longs = [r for r in rows if r[0].endswith("_long")]
    diffs = [round((l[3] - s[3]) / (l[2] - s[2])) for s, l in zip(shorts, longs)]
    print("two-window difference per forwarded hop:", ", ".join(f"{d:,}" for d in diffs))
    x = [[1.0, b, h] for _, b, h, _ in rows]
    y = [float(r[3]) for r in rows]
    m = [[sum(r[i] * r[j] for r in x) for j in range(3)] for i in range(3)]
    v = [sum(r[i] * t for r, t in zip(x, y)) for i in range(3)]
    fixed, ball, hop = solve(m, v)
    print(f"fit: fixed {fixed:,.0f}, per ball {ball:,.0f}, per forwarded hop {hop:,.0f} Ir")


if __name__ == "__main__":
    main()
