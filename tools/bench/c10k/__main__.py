"""bench-c10k's command line, and the order of the measurements: see __init__.py."""
import argparse
import os
import sys
import time

from checker.harness import procfs
from tools.bench.toolkit import ROOT, installed, missing_wdb_bench, progress, run_main

from . import __doc__ as OVERVIEW
from .idle import measure_idle
from .load import load_run, median
from .memcaslap import PACKAGE as MEMCASLAP_PACKAGE
from .plan import GENERATORS, MEMCACHED_LABEL, SERVERS, Row
from .report import DOC, cpu_busy, machine_line, print_table, write_doc

tell = progress("bench-c10k")


def measure_all(servers: list, args) -> dict:
    """{label: Row}. Idle memory first, server by server; then the load runs in rounds,
    every server once per round, so that a busy moment of the machine (another
    program, a noisy neighbour) falls on all of them alike; each cell is the median run."""
    rows = {s.label: Row() for s in servers}
    for server in servers if args.idle else []:
        tell(f"{server.label}: {', '.join(f'{n:,}' for n in args.idle)} idle connections")
        row = rows[server.label]
        row.idle, failed = measure_idle(server, args.idle)
        row.failed |= failed
    runs = {(s.label, g): [] for s in servers for g in GENERATORS}
    for round_ in range(1, args.repeat + 1):
        for server in servers:
            for generator in GENERATORS:
                done = runs[(server.label, generator)]
                if done and done[-1].error_share > 0.01:
                    continue    # refused once (memcaslap's keys): it will be again
                load, failed = load_run(server, generator, args)
                result = (f"{load.ops_per_sec:,.0f} ops/s" if not load.problem
                          else "failed" if not load.errors
                          else f"{load.short}: not run again" if load.error_share > 0.01
                          else f"{load.ops_per_sec:,.0f} ops/s, error replies (above)")
                tell(f"round {round_} of {args.repeat}: {server.label}, {generator}: {result}")
                done.append(load)
                rows[server.label].failed |= failed
    for (label, generator), loads in runs.items():
        setattr(rows[label], "wdb" if generator == "wdb_bench" else "memcaslap", median(loads))
        rows[label].runs[generator] = loads
    return rows


def parse_args():
    parser = argparse.ArgumentParser(prog="python3 -m tools.bench.c10k",
                                     description=OVERVIEW.split("\n")[0])
    parser.add_argument("-d", "--seconds", type=int,
                        default=os.environ.get("BENCH_SECONDS", "3"),
                        help="length of each load run, in whole seconds "
                             "(default: $BENCH_SECONDS or 3)")
    parser.add_argument("-r", "--repeat", type=int, default=os.environ.get("BENCH_REPEAT", "3"),
                        help="load runs per server and generator; the table shows the median "
                             "(default: $BENCH_REPEAT or 3)")
    parser.add_argument("-c", "--connections", type=int,
                        default=os.environ.get("BENCH_CONNECTIONS", "50"),
                        help="connections per load run (default: $BENCH_CONNECTIONS or 50)")
    parser.add_argument("-t", "--client-threads", type=int,
                        default=os.environ.get("BENCH_CLIENT_THREADS", "1"),
                        help="threads of each load generator (default: $BENCH_CLIENT_THREADS or "
                             "1, so that on 2 CPUs client and single-threaded server get one each)")
    parser.add_argument("-i", "--idle", default=os.environ.get("BENCH_IDLE", "1000,10000"),
                        help="idle connection counts, comma-separated, or 0 for none "
                             "(default: $BENCH_IDLE or 1000,10000)")
    parser.add_argument("--only", action="append", metavar="NAME",
                        help="only the servers whose label contains NAME (repeatable); "
                             "memcached is always measured, for the ratios; the doc is not written")
    parser.add_argument("--no-doc", action="store_true", help=f"do not write {DOC.path.name}")
    args = parser.parse_args()
    try:
        args.idle = sorted({int(n) for n in str(args.idle).split(",") if int(n) > 0})
    except ValueError:
        parser.error(f"--idle wants counts like 1000,10000, not {args.idle!r}")
    if not 1 <= args.repeat <= 100:
        parser.error("--repeat wants 1 to 100")
    if not 1 <= args.seconds <= 3600:
        parser.error("--seconds wants 1 to 3600")
    if not 1 <= args.connections <= 1000:
        parser.error("--connections wants 1 to 1000 (wdb_bench's limit)")
    if not 1 <= args.client_threads <= args.connections:
        parser.error("--client-threads wants 1 to --connections")
    return args


def warn_about_machine(args, busy: float | None):
    """What will make this run's numbers differ from an idle, well-equipped machine's."""
    if busy is not None and busy > 0.25:
        tell(f"other programs keep the CPUs {busy:.0%} busy: ops/s will be lower and vary more "
             "than on an idle machine; memory per connection does not depend on it")
    # The servers inherit our limit; the select server is held back by FD_SETSIZE, not by this.
    soft, hard = procfs.raise_open_files_limit(), procfs.hard_open_files_limit()
    need = max(args.idle, default=0) + 100
    if args.idle and soft < need:
        tell(f"open files limited to {soft} (ulimit -n, hard limit {hard}): "
             f"{max(args.idle):,} idle connections need about {need}; the counts above the "
             "limit will say EMFILE")
    if not installed("memcaslap"):
        tell(f"memcaslap not installed (apt-get install {MEMCASLAP_PACKAGE}): "
             "its columns will say so")


def main() -> int:
    args = parse_args()
    if problem := missing_wdb_bench("bench-c10k"):
        print(problem, file=sys.stderr)
        return 1
    busy = cpu_busy()
    machine = machine_line(busy)
    tell(machine)
    warn_about_machine(args, busy)
    missing = {s.label: why for s in SERVERS if (why := s.missing())}
    for label, why in missing.items():
        tell(f"{label}: {why}")
    chosen = [s for s in SERVERS if s.label not in missing and
              (not args.only or s.is_memcached or any(o.lower() in s.label.lower()
                                                      for o in args.only))]
    started = time.monotonic()
    rows = measure_all(chosen, args)
    skipped = {s.label: "not measured (--only)" for s in SERVERS
               if s.label not in missing and s.label not in rows}
    print_table(rows, {**missing, **skipped}, args)
    print(f"\n[bench-c10k] {time.monotonic() - started:.0f} s")
    if args.only:
        tell(f"--only: {DOC.path.relative_to(ROOT)} left as it was")
    elif not args.no_doc:
        write_doc(rows, {**missing, **skipped}, args, machine)
    failed = [label for label, row in rows.items() if row.failed and label != MEMCACHED_LABEL]
    return 1 if failed else 0


if __name__ == "__main__":
    run_main(main, "bench-c10k")
