"""Prints line coverage from `cargo llvm-cov report --json --summary-only`:
per crate, per module of the agent, and for the controller's engine,
timing, safety, plan and report, as a Markdown table (lines covered / lines).

Usage: coverage_table.py SUMMARY.json REPO_ROOT [--fail-under PERCENT]
(--fail-under applies to the goal rows: the agent and the five controller
modules)."""
import argparse
import json
import os
from collections import defaultdict

GOALS = ["agent", "controller: engine", "controller: timing", "controller: safety",
         "controller: plan", "controller: report"]


def groups(rel):
    """The table rows a source file counts in."""
    parts = rel.split("/")
    if len(parts) < 3 or parts[1] != "src":
        return []
    crate = parts[0]
    rows = [crate]
    module = parts[2].removesuffix(".rs")
    if crate == "agent":
        rows.append(f"agent: {module}")
    if crate == "controller":
        rows.append(f"controller: {module}")
    return rows


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("summary")
    ap.add_argument("root")
    ap.add_argument("--fail-under", type=float)
    a = ap.parse_args()
    data = json.load(open(a.summary))["data"][0]
    counts = defaultdict(lambda: [0, 0])
    root = os.path.realpath(a.root) + os.sep
    for f in data["files"]:
        name = os.path.realpath(f["filename"])
        if not name.startswith(root):
            continue
        lines = f["summary"]["lines"]
        for g in groups(name[len(root):]):
            counts[g][0] += lines["covered"]
            counts[g][1] += lines["count"]
    total = data["totals"]["lines"]
    print("| scope | lines covered | lines | coverage |")
    print("|---|---:|---:|---:|")
    print(f"| workspace | {total['covered']} | {total['count']} | {total['percent']:.1f} % |")
    missed = []
    for g in sorted(counts, key=lambda g: (":" in g, g)):
        cov, n = counts[g]
        pct = 100.0 * cov / n if n else 100.0
        mark = " (goal)" if g in GOALS else ""
        print(f"| {g}{mark} | {cov} | {n} | {pct:.1f} % |")
        if a.fail_under is not None and g in GOALS and pct < a.fail_under:
            missed.append(f"{g} {pct:.1f} %")
    if missed:
        print(f"coverage under {a.fail_under} %: " + ", ".join(missed))
        raise SystemExit(1)


if __name__ == "__main__":
    main()
