"""bench-c10k's load phase: each load generator against a freshly started server.

build/tools/wdb_bench, the course's load generator, runs CONNECTIONS closed-loop
connections on CLIENT_THREADS threads for SECONDS, 90% get / 10% set of 100-byte
values, every reply checked: ops/s, p50 and p99 latency. memcaslap (memcaslap.py)
runs the same workload. Load runs go in rounds (see __main__.py); the table
shows the median run.
"""
from tools.bench.toolkit import Load, run_wdb_bench, say

from .memcaslap import run_memcaslap
from .plan import GET_PERCENT, KEYS, VALUE_SIZE, Server, start


def run_wdb(port: int, args) -> Load:
    load = run_wdb_bench(port, connections=args.connections, seconds=args.seconds,
                         get_percent=GET_PERCENT, value_size=VALUE_SIZE, keys=KEYS,
                         threads=args.client_threads)
    if load.errors:
        load.problem = f"wdb_bench: {load.errors} wrong or broken replies (messages above)"
    return load


def load_run(server: Server, generator: str, args) -> tuple[Load, bool]:
    """One load generator against a freshly started server; (result, misbehaved)."""
    running = start(server, max(args.connections, 1024) + 64)
    if running is None:
        return Load(problem="did not start"), True
    try:
        load = (run_wdb if generator == "wdb_bench" else run_memcaslap)(running.port, args)
        died = running.died()
        output = running.output()
    finally:
        running.stop()
    if died is not None:
        say(f"{server.label} exited with status {died} during the {generator} run", output)
        load.problem = load.problem or f"the server exited with status {died} during the run"
        return load, True
    if load.problem:
        say(load.problem)
    # Wrong replies to wdb_bench are the server's fault; memcaslap's error
    # replies may be the protocol subset's (see the notes).
    return load, bool(load.problem) and generator == "wdb_bench"


def median(loads: list) -> Load | None:
    """The run with the median ops/s (its latencies with it); a failed run, if any failed."""
    if not loads:
        return None
    bad = [load for load in loads if load.problem and not load.errors]
    if bad:
        return bad[0]
    return sorted(loads, key=lambda load: load.ops_per_sec)[(len(loads) - 1) // 2]
