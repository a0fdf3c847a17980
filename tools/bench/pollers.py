#!/usr/bin/env python3
"""select vs poll vs epoll: this machine's cost per call beside the source's table.

    make bench-pollers                       (builds the binary, then runs this)
    /usr/bin/python3 -m tools.bench.pollers [--seconds S] [--no-wait] [--no-doc]

Runs build/tools/bench_pollers (see tools/bench/bench_pollers.cc for what is timed),
then prints one table: the measured microseconds per call of select(), poll()
and epoll_wait() for 10 to 10,000 watched descriptors, beside the course
source's figures read two ways:

  as printed, "µs per call"                      figure        µs per call
  as "CPU seconds per 100,000 calls"             figure × 10   µs per call

and says which reading the measurement supports, from all three of the
source's rows: N = 10, 100 and 10,000 (it leaves out the N = 1,000 row of the
table it quotes, Table 63-9 of The Linux Programming Interface). With gnuplot
installed it also draws docs/select-vs-epoll.svg (log-log; not with --no-doc). A benchmark, not a test:
numbers vary between runs and machines. Exit status: 0, or 1 if the
benchmark failed or timed out (it is then killed with its process group).
"""
import argparse
import os
import sys

from checker.harness.procs import run
from checker.harness.timeouts import T
from tools.bench.toolkit import ROOT, installed, progress, run_main, text_table

BENCH = ROOT / "build/tools/bench_pollers"
SVG = ROOT / "docs/select-vs-epoll.svg"

# The source's figures, as printed: rows N = 10, 100 and 10000, "based on 100K
# calls ... (in microseconds)". They are TLPI's Table 63-9 (CPU seconds for
# 100,000 monitoring operations) without its N = 1000 row and its poll column.
SOURCE = {10: (0.73, 0.41), 100: (3.0, 0.42), 10000: (930.0, 0.66)}   # N: (select, epoll)
# "CPU seconds per 100,000 calls": figure / 100,000 s = figure × 10 µs per call.
PER_100K = 10.0

# 12 cells of ~0.3 s plus setup take ~4 s; a hang must not last forever.
TIMEOUT = T(120)
PLOT_TIMEOUT = T(30)

tell = progress("bench-pollers")


# ---- running the benchmark --------------------------------------------------------

def run_benchmark(extra_args) -> dict:
    """Runs the binary with --tsv; returns {N: (select_us, poll_us, epoll_us)}.
    The checker's run(): its own process group, killed at the timeout."""
    if not BENCH.exists():
        sys.exit(f"[bench-pollers] {BENCH.relative_to(ROOT)} is missing: run `make bench-pollers`")
    result = run([BENCH, "--tsv", *extra_args], timeout=TIMEOUT)
    sys.stderr.write(result.stderr.decode(errors="replace"))   # its notes, e.g. a skipped N
    if result.timed_out:
        sys.exit(f"[bench-pollers] no result within {TIMEOUT:.0f} s: killed")
    if result.returncode != 0:
        sys.exit(f"[bench-pollers] bench_pollers failed ({result.exit_description()})")
    out = result.stdout.decode()
    rows = {}
    for line in out.splitlines():
        n, *values = line.split("\t")
        rows[int(n)] = tuple(float(v) for v in values)
    if not rows:
        sys.exit("[bench-pollers] bench_pollers printed no result")
    return rows


# ---- the table and the verdict ------------------------------------------------------

def fmt(value) -> str:
    if value is None:
        return "-"
    return f"{value:.3g}" if value < 100 else f"{value:.0f}"


GROUPS = [("measured here", ("select", "poll", "epoll")),
          ("source as µs", ("select", "epoll")),
          ("source as s/100k", ("select", "epoll"))]


def print_table(rows: dict):
    print(f"One call, one of N descriptors ready, in µs per call ({os.cpu_count()} CPUs here).")
    print("Source read as printed (µs), and as CPU seconds per 100,000 calls (×10 µs).\n")
    body = []
    for n in sorted(set(rows) | set(SOURCE)):
        measured = rows.get(n, (None, None, None))
        source = SOURCE.get(n, (None, None))
        scaled = [None if v is None else v * PER_100K for v in source]
        body.append([f"{n:>6}"] + [fmt(v) for v in (*measured, *source, *scaled)])
    print("\n".join(text_table([f"{'N':>6}"], GROUPS, body)))
    missing = [str(n) for n in sorted(rows) if n not in SOURCE]
    if missing:
        print(f"The source has no row for N = {', '.join(missing)}.")
    print()


def print_verdict(rows: dict):
    """The two readings differ by a constant factor of 10, so only the level
    can tell them apart: the source's machine (an older one) against this one.
    We compare on every N the source and the measurement share (10, 100, 10000)."""
    shared = [n for n in sorted(SOURCE) if n in rows]
    if not shared:
        print("No N in common with the source: no verdict.")
        return
    # source figure (as µs) / measured µs, per N: (select, epoll)
    by_n = {n: (SOURCE[n][0] / rows[n][0], SOURCE[n][1] / rows[n][2]) for n in shared}
    ratios = [r for pair in by_n.values() for r in pair]
    print("Source ÷ this machine, source read as s per 100,000 calls:")
    print(f"  {'N':>6}  {'select':>7}  {'epoll':>7}")
    for n, (sel, epo) in by_n.items():
        print(f"  {n:>6}  {sel * PER_100K:>6.2g}×  {epo * PER_100K:>6.2g}×")
    low, high = min(ratios), max(ratios)
    names = ", ".join(str(n) for n in shared)
    print(f"All of N = {names} (select and epoll):")
    print(f"  read as µs per call:            {low:.2g}× to {high:.2g}×")
    print(f"  read as s per 100,000 calls:    {low * PER_100K:.2g}× to {high * PER_100K:.2g}×")
    if low < 1 <= low * PER_100K:
        print("  Read as µs per call, the source's machine would be faster than this one;\n"
              "  read as CPU seconds per 100,000 calls, it is uniformly slower, as an older\n"
              "  machine should be. The measurement supports: CPU seconds per 100,000 calls.")
    elif low >= 1:
        print("  Both readings leave the source's machine slower than this one: the level\n"
              "  alone cannot decide here.")
    else:
        print("  Even read as s per 100,000 calls, the source's machine would be faster in\n"
              "  places: this machine is unusually slow; no verdict.")
    print()


# ---- the plot -----------------------------------------------------------------------

def plot(rows: dict):
    gnuplot = installed("gnuplot")
    if gnuplot is None:
        tell("gnuplot is not installed: no plot. Install it with\n"
             "    sudo apt-get install -y gnuplot-nox\n"
             f"and run again to draw {SVG.relative_to(ROOT)}.")
        return
    measured = "\n".join(f"{n} {s} {p} {e}" for n, (s, p, e) in sorted(rows.items()))
    source = "\n".join(f"{n} {s} {e} {s * PER_100K} {e * PER_100K}"
                       for n, (s, e) in sorted(SOURCE.items()))
    script = f"""
set terminal svg size 760,560 dynamic font "sans,12" background rgb "white" noenhanced
set output "{SVG}"
set encoding utf8
set title "One call, one of N descriptors ready"
set logscale xy
set xlabel "watched descriptors (N)"
set ylabel "µs per call"
set xrange [6:16000]
set yrange [0.1:30000]
set bmargin 9
set format y "%g"
set key below box maxrows 4 width -4
set grid
$measured << EOD
{measured}
EOD
$source << EOD
{source}
EOD
plot $measured using 1:2 with linespoints lw 2 pt 7 lc rgb "#c0392b" title "select (this machine)", \\
     $measured using 1:3 with linespoints lw 2 pt 5 lc rgb "#e67e22" title "poll (this machine)", \\
     $measured using 1:4 with linespoints lw 2 pt 9 lc rgb "#2471a3" title "epoll_wait (this machine)", \\
     $source using 1:2 with points pt 6 ps 1.5 lc rgb "#c0392b" title "select, source read as µs", \\
     $source using 1:3 with points pt 8 ps 1.5 lc rgb "#2471a3" title "epoll, source read as µs", \\
     $source using 1:4 with points pt 4 ps 1.5 lc rgb "#7b241c" title "select, source read as s/100,000 calls", \\
     $source using 1:5 with points pt 12 ps 1.5 lc rgb "#1b4f72" title "epoll, source read as s/100,000 calls"
"""
    SVG.parent.mkdir(parents=True, exist_ok=True)
    result = run([gnuplot], timeout=PLOT_TIMEOUT, input=script.encode())
    if result.timed_out:
        tell(f"gnuplot took more than {PLOT_TIMEOUT:.0f} s: no plot")
        return
    if result.returncode != 0:
        tell(f"gnuplot failed: no plot\n{result.stderr.decode(errors='replace').strip()}")
        return
    tell(f"plot written to {SVG.relative_to(ROOT)}")


def main() -> int:
    parser = argparse.ArgumentParser(prog="python3 -m tools.bench.pollers",
                                     description=__doc__.split("\n")[0])
    parser.add_argument("--seconds", type=float, help="time per cell (default 0.3)")
    parser.add_argument("--no-wait", action="store_true",
                        help="zero timeouts: no wait-queue bookkeeping in select/poll")
    parser.add_argument("--no-doc", action="store_true",
                        help=f"do not draw {SVG.relative_to(ROOT)}")
    args = parser.parse_args()
    extra = []
    if args.seconds is not None:
        extra += ["--seconds", str(args.seconds)]
    if args.no_wait:
        extra.append("--no-wait")

    rows = run_benchmark(extra)
    print_table(rows)
    print_verdict(rows)
    if not args.no_doc:
        plot(rows)
    return 0


if __name__ == "__main__":
    run_main(main, "bench-pollers")
