#!/usr/bin/env python3
"""Per-request profile from two callgrind runs of the same system.

    python3 bench/callgrind_diff.py LONG.callgrind N SHORT.callgrind WARM [TOP]

Runs callgrind_annotate on both files (all functions, exclusive Ir) and prints
the functions by (Ir_long - Ir_short) / (N - WARM): startup and shutdown
cancel out, what is left is what one proxied request costs, function by
function.
"""
import re
import subprocess
import sys

LINE = re.compile(r"^\s*([\d,]+)\s+\(\s*[\d.]+%\)\s+(.*)$")


def functions(path):
    out = subprocess.run(["callgrind_annotate", "--inclusive=no", "--threshold=100", path],
                         capture_output=True, text=True, check=True).stdout
    table = {}
    for line in out.splitlines():
        m = LINE.match(line)
        if m and "PROGRAM TOTALS" not in m.group(2):
            # Drop the object path: the same function from a renamed binary copy must match.
            name = re.sub(r"\s+\[[^\]]*\]$", "", m.group(2))
            table[name] = table.get(name, 0) + int(m.group(1).replace(",", ""))
    return table


def main():
    long_path, n, short_path, warm = sys.argv[1], int(sys.argv[2]), sys.argv[3], int(sys.argv[4])
    top = int(sys.argv[5]) if len(sys.argv) > 5 else 30
    a, b = functions(long_path), functions(short_path)
    per = {k: (a.get(k, 0) - b.get(k, 0)) / (n - warm) for k in set(a) | set(b)}
    total = sum(per.values())
    print(f"{'Ir/req':>9}  {'share':>6}  function   (total {total:,.0f} Ir/request)")
    for name, v in sorted(per.items(), key=lambda kv: -kv[1])[:top]:
        print(f"{v:9,.0f}  {100 * v / total if total else 0:5.1f}%  {name}")


if __name__ == "__main__":
    main()
