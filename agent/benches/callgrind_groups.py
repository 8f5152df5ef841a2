#!/usr/bin/env python3
"""Instructions per forwarded hop, by crate, from two callgrind windows of
worker_hops (a short and a long one at the same rate, each dumped by
callgrind_window.sh): the difference of each group's self cost over the
difference of the forwarded hops, so the per-window fixed cost cancels.

    callgrind_groups.py SHORT.out.1 HOPS_SHORT LONG.out.1 HOPS_LONG

In a dump taken after `callgrind_control -z`, the frames that were on the
stack at the zero (thread start, the runtime's loop) carry most of the
window as "self" cost; entries above 20 % of the total are left out, and
the generic, tokio and libc rows stay inflated by the same effect: read the
crate rows (serde_json, http, hyper, url, allocation) and the total.

Needs callgrind_annotate (valgrind) on PATH; the bench binary must keep its
symbols (CARGO_PROFILE_BENCH_STRIP=false, see docs/perf/worker.md).
"""

import re
import subprocess
import sys
from collections import defaultdict

LINE = re.compile(r"^\s*([\d,]+)\s+\([^)]*\)\s+(.*)$")
GENERIC = {"core", "alloc", "std", "_"}
ALLOC = ("malloc", "free", "_int_", "realloc", "calloc", "cfree", "tcache", "consolidate",
         "unlink_chunk", "sysmalloc", "alloc_perturb", "__rust_alloc", "__rust_dealloc",
         "__rust_realloc", "__rdl_")
MEM = ("memcpy", "memmove", "memset", "memcmp", "bcmp", "__memcpy", "__memmove", "__memset")


def group(symbol: str) -> str:
    """The crate (or libc group) a function's self cost is charged to."""
    name = symbol.split(" [")[0]
    name = name.split(":", 1)[1] if re.match(r"^[^<:]*\.(rs|c|S|h):", name) else name
    bare = name.strip()
    if bare.startswith("???"):
        bare = bare[3:].lstrip(":")
    if any(bare.startswith(p) for p in MEM):
        return "memcpy/memset (libc)"
    if any(bare.startswith(p) or p in bare.split("::")[-1][:12] for p in ALLOC) and "::" not in bare:
        return "allocation (malloc/free)"
    if bare.startswith(("__rust_alloc", "__rust_dealloc", "__rust_realloc", "__rdl_")):
        return "allocation (malloc/free)"
    if "::" not in bare:
        return "libc/other (" + (bare[:24] or "?") + ")" if bare.startswith(("pthread", "__lll", "epoll", "syscall", "__GI", "clock", "__vdso")) else "libc/other"
    # Crate roots: a path segment at the start or after `<`, `&`, `(`, `,`,
    # `*` or a space (so `core::ptr::drop_in_place<hyper::…>` is hyper's).
    crates = re.findall(r"(?:^|[<\s&(,*])([A-Za-z_][A-Za-z0-9_]*)::", bare)
    if "__rustc" in crates or "__rust_alloc" in bare:
        return "allocation (malloc/free)"
    for c in crates:
        if c not in GENERIC:
            return c
    return "core/alloc/std (generic)" if crates else "libc/other"


def costs(path: str) -> dict:
    out = subprocess.run(
        ["callgrind_annotate", "--inclusive=no", "--threshold=100", path],
        check=True, capture_output=True, text=True,
    ).stdout
    total = 0
    per = defaultdict(int)
    for line in out.splitlines():
        m = LINE.match(line)
        if not m:
            continue
        n = int(m.group(1).replace(",", ""))
        what = m.group(2)
        if "PROGRAM TOTALS" in what:
            total = n
            continue
        if n > 0.2 * total:
            continue
        per[group(what)] += n
    per["(total)"] = total
    return per


def main() -> None:
    if len(sys.argv) != 5:
        sys.exit(__doc__)
    short, hops_short, long_, hops_long = sys.argv[1:]
    a, b = costs(short), costs(long_)
    hops = float(hops_long) - float(hops_short)
    rows = [(k, (b.get(k, 0) - a.get(k, 0)) / hops) for k in set(a) | set(b)]
    total = dict(rows)["(total)"]
    print(f"forwarded hops: {hops:.0f} more in the long run; instructions per hop: {total:,.0f}")
    print("| where | instructions per hop | share |")
    print("|---|---|---|")
    for k, v in sorted(rows, key=lambda r: -r[1]):
        if k == "(total)" or abs(v) < 0.005 * total:
            continue
        print(f"| {k} | {v:,.0f} | {100 * v / total:.0f} % |")


if __name__ == "__main__":
    main()
