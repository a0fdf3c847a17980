"""WeensyDB v4, v5, v8 and memcached under the same load, in one table.

    make bench-weensydb                      (builds everything, then runs this)
    BENCH_SECONDS=10 BENCH_CONNECTIONS=32 make bench-weensydb
    /usr/bin/python3 -m tools.bench.weensydb --seconds 1 --get 90 --get 10

For every workload, each server is started afresh on a free port and
build/tools/wdb_bench (the course's load generator) drives it: CONNECTIONS
closed-loop connections for SECONDS, every reply checked. The table has one
row per server; for each workload its ops/s, median and 99th-percentile
latency, and its ops/s as a multiple of memcached's (memcached -t 1: one
worker thread, like a single event loop).

This is a benchmark, not a test: numbers vary from run to run and machine to
machine, so compare rows of one table, not tables. Every process it starts
has a timeout and is killed with its whole process group, Ctrl-C included.
Exit status: 0, or 1 if a WeensyDB server is missing, failed or answered wrongly.
"""
import argparse
import os
import sys

from tools.bench.toolkit import (BenchServer, Load, StartError, missing_wdb_bench, progress,
                                 run_main, run_wdb_bench, say, text_table)

SERVERS = [
    BenchServer("WeensyDB v4", "build/solutions/06-weensydb-4/weensydb"),
    BenchServer("WeensyDB v5", "build/solutions/07-weensydb-5/weensydb"),
    BenchServer("WeensyDB v8", "build/solutions/10-weensydb-8/weensydb"),
    BenchServer("memcached -t 1"),
]
MEMCACHED = SERVERS[-1].label
COLUMNS = ("ops/s", "p50 µs", "p99 µs", "ratio")

tell = progress("bench")


def measure(server: BenchServer, get_percent: int, args) -> Load:
    """Starts the server, runs one workload against it, stops it."""
    tell(f"{server.label:<15} {get_percent}% get ...")
    try:
        running = server.start()
    except StartError as e:
        say(f"{server.label} {e}")
        return Load(problem=f"did not start: {e}")
    with running:
        result = run_wdb_bench(running.port, connections=args.connections, seconds=args.seconds,
                               get_percent=get_percent, value_size=args.value_size,
                               keys=args.keys)
        died = running.died()
        if died is not None:
            say(f"{server.label} exited with status {died} during the run", running.output())
            result.problem = result.problem or f"server exited with status {died} during the run"
        elif result.problem:
            say(result.problem)
    return result


# ---- the table ------------------------------------------------------------------

def cells(result: Load | None, memcached: Load | None) -> list[str]:
    if result is None:
        return [""] * len(COLUMNS)
    if result.problem:
        return ["failed"] + [""] * (len(COLUMNS) - 1)
    if memcached is not None and not memcached.problem and memcached.ops_per_sec > 0:
        ratio = f"{result.ops_per_sec / memcached.ops_per_sec:.2f}x"
    else:
        ratio = "-"
    return [f"{result.ops_per_sec:.0f}", f"{result.p50_us:.1f}", f"{result.p99_us:.1f}", ratio]


def print_table(results: dict, missing: dict, args):
    """results[(label, get_percent)] -> Load; missing[label] -> why not run."""
    print()
    print(f"WeensyDB vs memcached: {args.connections} connections, {args.value_size}-byte values, "
          f"{args.keys} keys, {args.seconds:g} s per run")
    groups = [(f"{g}% get, {100 - g}% set", COLUMNS) for g in args.get]
    body = []
    for server in SERVERS:
        if server.label in missing:
            body.append([server.label, missing[server.label]])
        else:
            body.append([server.label] + [c for g in args.get
                                          for c in cells(results.get((server.label, g)),
                                                         results.get((MEMCACHED, g)))])
    print("\n".join(text_table(["server"], groups, body)))
    print("ratio: ops/s divided by memcached's under the same workload.")
    for (label, g), result in results.items():
        if result.problem:
            print(f"{label}, {g}% get: {result.problem}")
        elif result.errors:
            print(f"{label}, {g}% get: {result.errors} wrong or broken replies (messages above)")


# ---- main -----------------------------------------------------------------------

def parse_args():
    parser = argparse.ArgumentParser(prog="python3 -m tools.bench.weensydb",
                                     description=__doc__.split("\n")[0])
    parser.add_argument("-d", "--seconds", type=float,
                        default=os.environ.get("BENCH_SECONDS", "3"),
                        help="length of each run (default: $BENCH_SECONDS or 3)")
    parser.add_argument("-c", "--connections", type=int,
                        default=os.environ.get("BENCH_CONNECTIONS", "8"),
                        help="connections per run (default: $BENCH_CONNECTIONS or 8)")
    parser.add_argument("-g", "--get", type=int, action="append",
                        help="percent of gets in a workload; repeat for more (default: 90 and 50)")
    parser.add_argument("-s", "--value-size", type=int, default=100, help="bytes per value")
    parser.add_argument("-k", "--keys", type=int, default=1000, help="number of keys")
    args = parser.parse_args()
    args.get = args.get or [90, 50]
    return args


def main() -> int:
    args = parse_args()
    if problem := missing_wdb_bench("bench-weensydb"):
        print(problem, file=sys.stderr)
        return 1
    missing = {s.label: why for s in SERVERS if (why := s.missing())}
    results = {}
    for get_percent in args.get:
        for server in SERVERS:
            if server.label not in missing:
                results[(server.label, get_percent)] = measure(server, get_percent, args)
    print_table(results, missing, args)
    failed = [label for label in missing if label != MEMCACHED]
    failed += [label for (label, _), r in results.items()
               if (r.problem or r.errors) and label != MEMCACHED]
    return 1 if failed else 0


if __name__ == "__main__":
    run_main(main, "bench-weensydb")
