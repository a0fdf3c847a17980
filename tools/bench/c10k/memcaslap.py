"""memcaslap (Debian's libmemcached-tools), a real memcached load generator, run with
wdb_bench's connections, threads, seconds, mix and value size: ops/s, and p50/p99
estimated from its log2 latency histogram (within a factor of 2 at worst)."""
import collections
import pathlib
import re
import tempfile

from tools.bench.toolkit import RUN_SLACK, Load, installed, run_program

from .plan import GET_PERCENT, VALUE_SIZE

PACKAGE = "libmemcached-tools"

CONFIG = f"""key
16 16 1
value
{VALUE_SIZE} {VALUE_SIZE} 1
cmd
0 {(100 - GET_PERCENT) / 100}
1 {GET_PERCENT / 100}
"""


def run_memcaslap(port: int, args) -> Load:
    """memcaslap, text protocol over TCP, with a configuration file of our own:
    without -F it writes its defaults to ~/.memslap.cnf (the passwd entry's home
    directory, whatever $HOME says)."""
    memcaslap = installed("memcaslap")
    if memcaslap is None:
        return Load(problem=f"memcaslap not installed (apt-get install {PACKAGE})")
    with tempfile.TemporaryDirectory() as tmp:
        config = pathlib.Path(tmp) / "memcaslap.cnf"
        config.write_text(CONFIG)
        # -S: print statistics (with the latency histogram) once, at the end.
        argv = [memcaslap, "-s", f"127.0.0.1:{port}", "-t", f"{args.seconds}s",
                "-S", f"{args.seconds}s", "-c", args.connections, "-T", args.client_threads,
                "-F", config]
        out, err, problem = run_program(argv, args.seconds + RUN_SLACK)
    if problem:
        return Load(problem=f"memcaslap {problem}")
    return parse(out, err)


def parse(out: str, err: str) -> Load:
    """The last line says `Run time: 5.0s Ops: 612345 TPS: 122469 Net_rate: ...`; the
    `Total Statistics (N events)` block ends with `Log2 Dist:`, rows of counts where
    count i of row `r:` is for latencies in (2^(r+i-1), 2^(r+i)] µs. memcaslap prints
    each error reply on a line of its own: `<fd CLIENT_ERROR ...`."""
    tps = re.search(r"Run time: [\d.]+s Ops: \d+ TPS: (\d+)", out)
    if not tps:
        why = (err or out).strip().splitlines()[-1:] or ["no `Run time` line"]
        return Load(problem=f"memcaslap failed: {why[0]}")
    load = Load(float(tps.group(1)), approximate=True)
    histogram = {}
    block = out.split("Total Statistics (", 1)[-1].split("Log2 Dist:", 1)
    if len(block) == 2:
        for line in block[1].splitlines()[1:]:
            m = re.match(r"\s+(\d+):((?:\s+\d+)+)\s*$", line)
            if not m:
                break
            for i, count in enumerate(m.group(2).split()):
                histogram[int(m.group(1)) + i] = int(count)
    if histogram:
        load.p50_us = log2_percentile(histogram, 50)
        load.p99_us = log2_percentile(histogram, 99)
    errors = collections.Counter(line.split(" ", 1)[1].strip() for line in out.splitlines()
                                 if re.match(r"<\d+ \S", line))
    if errors:
        load.errors = sum(errors.values())
        ops = re.search(r"Run time: [\d.]+s Ops: (\d+)", out)
        load.error_share = load.errors / max(int(ops.group(1)), 1)
        common = ", ".join(f"{n:,} × `{text}`" for text, n in errors.most_common(2))
        load.problem = (f"memcaslap got {load.errors:,} error replies, "
                        f"{load.error_share:.0%} of all ({common})")
        # memcaslap counts error replies as operations: the numbers then measure errors.
        load.short = "keys refused" if "bad key" in common else "errors"
    return load


def log2_percentile(histogram: dict, p: float) -> float:
    """The p-th percentile of a log2 histogram, interpolated geometrically within
    its bucket (bucket b holds latencies in (2^(b-1), 2^b] µs)."""
    total = sum(histogram.values())
    rank = p / 100 * total
    seen = 0
    for bucket in sorted(histogram):
        count = histogram[bucket]
        if count and seen + count >= rank:
            low = 2.0 ** (bucket - 1) if bucket > 0 else 0.5
            return low * 2 ** ((rank - seen) / count)
        seen += count
    return 2.0 ** max(histogram)
