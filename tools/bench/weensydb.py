#!/usr/bin/env python3
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
import pathlib
import signal
import socket
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass

ROOT = pathlib.Path(__file__).resolve().parents[2]
# The checker's process handling: own process groups, PDEATHSIG, `port N` read with a timeout.
from checker.harness import CheckFailed  # noqa: E402
from checker.harness.procs import free_port, kill_all, kill_group, spawn, start_server  # noqa: E402
from checker.harness.timeouts import SCALE  # noqa: E402  (NETCOURSE_TIMEOUT_SCALE, as the checker reads it)
BENCH = ROOT / "build/tools/wdb_bench"
MEMCACHED = "/usr/bin/memcached"
MEMCACHED_MISSING = "memcached not installed (apt-get install memcached)"


START_TIMEOUT = 5 * SCALE   # from exec to `port N` / accepting connections
STOP_TIMEOUT = 5 * SCALE    # from SIGTERM to exit, before SIGKILL
BENCH_SLACK = 30 * SCALE    # wdb_bench's preload, its 5 s reply timeouts, its exit


@dataclass
class Server:
    label: str
    binary: str                 # path relative to ROOT, or MEMCACHED
    is_memcached: bool = False


SERVERS = [
    Server("WeensyDB v4", "build/solutions/06-weensydb-4/weensydb"),
    Server("WeensyDB v5", "build/solutions/07-weensydb-5/weensydb"),
    Server("WeensyDB v8", "build/solutions/10-weensydb-8/weensydb"),
    Server("memcached -t 1", MEMCACHED, is_memcached=True),
]


@dataclass
class Result:
    ops_per_sec: float = 0.0
    p50_us: float = 0.0
    p99_us: float = 0.0
    errors: int = 0
    problem: str = ""           # why there are no numbers, if there are none


class StartError(Exception):
    """A server could not be started; the message says why."""


# ---- processes ----------------------------------------------------------------

def stop(proc: subprocess.Popen):
    """SIGTERM to the process group, SIGKILL (and reaping) if it has not exited in time."""
    kill_group(proc, signal.SIGTERM)
    try:
        proc.wait(STOP_TIMEOUT)
    except subprocess.TimeoutExpired:
        pass
    kill_group(proc)


def say(message: str, output: bytes | None = None):
    """Prints a progress message and, if given, the last lines of what the
    server wrote (stdout and stderr for memcached, stderr for WeensyDB)."""
    print("    " + message, flush=True)
    for line in (output or b"").decode(errors="replace").strip().splitlines()[-5:]:
        print("      | " + line, flush=True)


# ---- starting servers -----------------------------------------------------------

def start_weensydb(server: Server):
    """(process, port, its stderr so far as a function) of a WeensyDB started with -p 0."""
    try:
        s = start_server(ROOT / server.binary, timeout=START_TIMEOUT)
    except CheckFailed as failure:
        raise StartError(f"{failure.what} (saw: {failure.seen})") from None
    return s.proc, s.port, s.stderr


def wait_until_accepting(proc: subprocess.Popen, port: int):
    """memcached cannot announce its port: poll it with connect(), boundedly."""
    deadline = time.monotonic() + START_TIMEOUT
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise StartError(f"exited with status {proc.returncode} before accepting connections")
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
            return
        except OSError:
            time.sleep(0.05)
    raise StartError(f"accepted no connection on port {port} within {START_TIMEOUT:.0f} s")


def start_memcached(log):
    """(process, port, its output so far as a function). free_port() may be taken by
    another program before memcached binds it: that shows as memcached failing to start."""
    port = free_port()
    # -t 1: one worker thread. -U 0: no UDP. As root, memcached refuses to run
    # unless told which user to be.
    cmd = [MEMCACHED, "-t", "1", "-l", "127.0.0.1", "-p", str(port), "-U", "0"]
    if os.geteuid() == 0:
        cmd += ["-u", "root"]
    proc = spawn(cmd, stdout=log, stderr=log)
    try:
        wait_until_accepting(proc, port)
    except BaseException:
        stop(proc)
        raise

    def output() -> bytes:
        log.seek(0)
        return log.read()
    return proc, port, output


def missing_reason(server: Server) -> str:
    """Why this server cannot be run, or "" if it can."""
    if server.is_memcached:
        return "" if os.access(MEMCACHED, os.X_OK) else MEMCACHED_MISSING
    if (ROOT / server.binary).exists():
        return ""
    source = pathlib.Path(server.binary.replace("build/", "", 1) + ".cc")
    if not (ROOT / source).exists():
        return f"not written yet: {source} is missing"
    return f"not built: run `make {server.binary}`"


# ---- measuring --------------------------------------------------------------------

def run_bench(port: int, get_percent: int, args) -> tuple[Result, str]:
    """Runs wdb_bench once. Returns its numbers and its stderr."""
    cmd = [BENCH, "-p", port, "-c", args.connections, "-d", args.seconds, "-g", get_percent,
           "-s", args.value_size, "-k", args.keys, "--tsv"]
    proc = spawn(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    limit = args.seconds + BENCH_SLACK
    try:
        out, err = proc.communicate(timeout=limit)
    except subprocess.TimeoutExpired:
        return Result(problem=f"wdb_bench did not finish within {limit:.0f} s"), ""
    finally:
        stop(proc)
    # The last stdout line is the --tsv one: ops_per_sec p50_us p99_us errors.
    lines = out.strip().splitlines()
    fields = lines[-1].split("\t") if lines else []
    if proc.returncode in (0, 1) and len(fields) == 4:
        ops, p50, p99, errors = fields
        return Result(float(ops), float(p50), float(p99), int(errors)), err
    why = err.strip().splitlines()[-1] if err.strip() else f"exit status {proc.returncode}"
    return Result(problem=f"wdb_bench failed: {why}"), err


def measure(server: Server, get_percent: int, args) -> Result:
    """Starts the server, runs one workload against it, stops it."""
    print(f"[bench] {server.label:<15} {get_percent}% get ...", flush=True)
    with tempfile.TemporaryFile() as log:
        try:
            if server.is_memcached:
                proc, port, output = start_memcached(log)
            else:
                proc, port, output = start_weensydb(server)
        except StartError as e:
            log.seek(0)
            say(f"{server.label} {e}", log.read() if server.is_memcached else None)
            return Result(problem=f"did not start: {e}")
        try:
            result, bench_stderr = run_bench(port, get_percent, args)
            died = proc.poll()
        finally:
            stop(proc)
        for line in bench_stderr.strip().splitlines():
            say(line)
        if died is not None:
            say(f"{server.label} exited with status {died} during the run", output())
            result.problem = result.problem or f"server exited with status {died} during the run"
        elif result.problem:
            say(result.problem)
    return result


# ---- the table ------------------------------------------------------------------

GROUP = "{:>9} {:>8} {:>8} {:>7}"
GROUP_WIDTH = len(GROUP.format("", "", "", ""))


def format_cells(result: Result | None, memcached: Result | None) -> str:
    if result is None:
        return " " * GROUP_WIDTH
    if result.problem:
        return f"{'failed':>{GROUP_WIDTH}}"
    if memcached is not None and not memcached.problem and memcached.ops_per_sec > 0:
        ratio = f"{result.ops_per_sec / memcached.ops_per_sec:.2f}x"
    else:
        ratio = "-"
    return GROUP.format(f"{result.ops_per_sec:.0f}", f"{result.p50_us:.1f}",
                        f"{result.p99_us:.1f}", ratio)


def print_table(results: dict, missing: dict, args):
    """results[(label, get_percent)] -> Result; missing[label] -> why not run."""
    memcached_label = SERVERS[-1].label
    name_width = max(len(s.label) for s in SERVERS) + 2
    print()
    print(f"WeensyDB vs memcached: {args.connections} connections, {args.value_size}-byte values, "
          f"{args.keys} keys, {args.seconds:g} s per run")
    titles = "".join(f"   {f'{g}% get, {100 - g}% set':^{GROUP_WIDTH}}" for g in args.get)
    print(" " * name_width + titles.rstrip())
    columns = "".join("   " + GROUP.format("ops/s", "p50 µs", "p99 µs", "ratio") for _ in args.get)
    print(f"{'server':<{name_width}}{columns}")
    for server in SERVERS:
        if server.label in missing:
            print(f"{server.label:<{name_width}}   {missing[server.label]}")
            continue
        cells = "".join("   " + format_cells(results.get((server.label, g)),
                                             results.get((memcached_label, g)))
                        for g in args.get)
        print(f"{server.label:<{name_width}}{cells}")
    print("ratio: ops/s divided by memcached's under the same workload.")
    for (label, g), result in results.items():
        if result.problem:
            print(f"{label}, {g}% get: {result.problem}")
        elif result.errors:
            print(f"{label}, {g}% get: {result.errors} wrong or broken replies (messages above)")


# ---- main -----------------------------------------------------------------------

def parse_args():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
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
    # make (or a CI runner) ends us with SIGTERM: turn it into an exception so
    # that the `finally` clauses still stop every server.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    args = parse_args()
    if not BENCH.exists():
        print(f"bench_weensydb: {BENCH.relative_to(ROOT)} is missing: run `make bench-weensydb` "
              f"(or `make {BENCH.relative_to(ROOT)}`)", file=sys.stderr)
        return 1
    missing = {s.label: why for s in SERVERS if (why := missing_reason(s))}
    results = {}
    try:
        for get_percent in args.get:
            for server in SERVERS:
                if server.label not in missing:
                    results[(server.label, get_percent)] = measure(server, get_percent, args)
    finally:
        kill_all()
    print_table(results, missing, args)
    failed = [label for label in missing if label != SERVERS[-1].label]
    failed += [label for (label, _), r in results.items()
               if (r.problem or r.errors) and label != SERVERS[-1].label]
    return 1 if failed else 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except KeyboardInterrupt:
        print("\nbench_weensydb: interrupted; every server was stopped", file=sys.stderr)
        sys.exit(130)
