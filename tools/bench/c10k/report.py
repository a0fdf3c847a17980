"""bench-c10k's report: one table, one row per server, printed and written to
docs/c10k-bench.md; ratios are to memcached's (ops/s ÷ memcached's in the same
round; resident bytes, user + kernel, ÷ memcached's); notes under it for what
the cells cannot say."""
import datetime
import os
import platform
import time

from checker.harness import procfs
from checker.harness.procs import run
from checker.harness.timeouts import T
from tools.bench.toolkit import ROOT, GeneratedBlock, fmt_bytes, installed, markdown_table, text_table

from .idle import KERNEL_STACK, Idle
from .load import median
from .plan import GENERATORS, GET_PERCENT, MEMCACHED_LABEL, SERVERS, VALUE_SIZE

DOC = GeneratedBlock(ROOT / "docs/c10k-bench.md", "bench-c10k", "tools/bench/c10k",
                     "C10K: WeensyDB servers against memcached")

LOAD_COLUMNS = ("ops/s", "p50 µs", "p99 µs", "ratio")
IDLE_COLUMNS = ("user", "kernel", "virtual", "ratio")


# ---- cells ------------------------------------------------------------------------

def fmt_us(us: float, approximate: bool) -> str:
    text = f"{us:.0f}" if us >= 100 else f"{us:.1f}"
    return "~" + text if approximate else text


def ratio(value: float, reference: float | None) -> str:
    if reference is None or reference <= 0:
        return "-"
    r = value / reference
    return f"{r:.2f}x" if r < 10 else f"{r:.0f}x"


def load_cells(runs: list, reference_runs: list) -> list[str]:
    """A server's runs under one generator, and memcached's, round by round."""
    load = median(runs)
    if load is None:
        return [""] * 4
    if load.problem and not load.ops_per_sec:
        return ["failed", "", "", ""]
    if load.error_share > 0.01:
        return [f"n/a ({load.short or 'errors'})", "", "", ""]
    mark = "!" if load.errors else ""   # numbers, but with a few error replies: see the notes
    return [f"{load.ops_per_sec:,.0f}{mark}", fmt_us(load.p50_us, load.approximate),
            fmt_us(load.p99_us, load.approximate), round_ratio(runs, reference_runs)]


def round_ratio(runs: list, reference_runs: list) -> str:
    """The median, over the rounds, of ops/s ÷ memcached's ops/s in the same round: a
    busy moment of the machine slows one round, and both sides of its ratio."""
    ratios = sorted(a.ops_per_sec / b.ops_per_sec for a, b in zip(runs, reference_runs)
                    if b.ops_per_sec > 0 and not b.problem and not (a.problem and not a.errors))
    if not ratios:
        return "-"
    r = ratios[(len(ratios) - 1) // 2] if len(ratios) % 2 else \
        (ratios[len(ratios) // 2 - 1] + ratios[len(ratios) // 2]) / 2
    return f"{r:.2f}x" if r < 10 else f"{r:.0f}x"


def idle_cells(idle: Idle | None, reference: Idle | None, limit: str = "") -> list[str]:
    if idle is None:
        return [f"n/a ({limit})" if limit else "", "", "", ""]
    if not idle.complete():
        return [f"n/a ({idle.limit or 'failed'})", "", "", ""]
    ref = (reference.user + reference.kernel) if reference and reference.complete() else None
    return [fmt_bytes(idle.user), fmt_bytes(idle.kernel), fmt_bytes(idle.virtual),
            ratio(idle.user + idle.kernel, ref)]


# ---- the table --------------------------------------------------------------------

def table_rows(rows: dict, missing: dict, args) -> list[list[str]]:
    """[[server, cells...], ...] in SERVERS order; a missing server has one cell."""
    mc = rows.get(MEMCACHED_LABEL)
    out = []
    for server in SERVERS:
        if server.label in missing:
            out.append([server.label, missing[server.label]])
            continue
        row = rows[server.label]
        cells = [server.label]
        for generator in GENERATORS:
            cells += load_cells(row.runs.get(generator, []),
                                mc.runs.get(generator, []) if mc else [])
        by_count = {i.wanted: i for i in row.idle}
        # A count not tried because a smaller one already hit a limit shares its reason.
        stopped = next((i.limit or "failed" for i in row.idle if not i.complete()), "")
        for n in args.idle:
            ref = next((i for i in mc.idle if i.wanted == n), None) if mc else None
            cells += idle_cells(by_count.get(n), ref, stopped)
        out.append(cells)
    return out


def group_titles(args) -> list[tuple[str, tuple]]:
    threads = f"{args.client_threads} thread" + ("s" if args.client_threads != 1 else "")
    titles = [(f"wdb_bench, {args.connections} conns, {threads}", LOAD_COLUMNS),
              (f"memcaslap, {args.connections} conns, {threads}", LOAD_COLUMNS)]
    titles += [(f"{n:,} idle conns, bytes each", IDLE_COLUMNS) for n in args.idle]
    return titles


def print_table(rows: dict, missing: dict, args):
    print()
    print(f"C10K: {args.seconds} s per load run, {GET_PERCENT}% get / {100 - GET_PERCENT}% set of "
          f"{VALUE_SIZE}-byte values; idle connections each answered one `get x`")
    for line in text_table(["server"], group_titles(args), table_rows(rows, missing, args)):
        print(line)
    print()
    for note in notes(rows, args):
        print("* " + note)


KEY_NOTE = ("memcaslap's keys begin with 8 binary bytes, each with bit 0x10 set "
            "(KEY_PREFIX_MASK 0x1010101010101010), so most hold control characters. memcached "
            "takes any byte in a key but space, CR, LF and NUL; WeensyDB refuses control "
            "characters (`CLIENT_ERROR bad key`), as memcached's protocol.txt says keys must "
            "not hold them. Every set then fails and memcaslap never sends a get: its numbers "
            "would count error replies, so the table leaves them out.")


def notes(rows: dict, args, for_doc: bool = False) -> list[str]:
    """What the table's cells cannot say: limits hit, errors, the kernel-stack check."""
    out = ["ratio: ops/s ÷ memcached's in the same round (the median over the rounds); for idle "
           "connections, resident bytes (user + kernel) ÷ memcached's. ~: estimated from "
           "memcaslap's log2 latency histogram."]
    refused = []
    for label, row in rows.items():
        for load, name in ((row.wdb, "wdb_bench"), (row.memcaslap, "memcaslap")):
            if load and "bad key (control characters)" in load.problem:
                refused.append(f"{label} ({load.errors:,}, {load.error_share:.0%})")
            elif load and load.problem:
                out.append(f"{label}, {name}: {load.problem}"
                           + (" (!: numbers shown, those replies left out)"
                              if load.errors and load.error_share <= 0.01 else ""))
        for idle in row.idle:
            if idle.problem:
                out.append(f"{label}, {idle.wanted:,} idle: {idle.problem}")
            if idle.complete() and idle.threads > idle.wanted:
                out.append(thread_note(label, idle))
    for generator in GENERATORS if args.repeat > 1 else ():
        spread = [f"{label} " + " ".join(f"{load.ops_per_sec / 1000:.0f}k"
                                          for load in row.runs.get(generator, []))
                  for label, row in rows.items()
                  if row.runs.get(generator) and not row.runs[generator][0].problem]
        if spread:
            out.append(f"{generator}, ops/s of each run (the table shows the median): "
                       + "; ".join(spread))
    if refused:
        out.append("memcaslap got `CLIENT_ERROR bad key (control characters)` from "
                   f"{', '.join(refused)} (how many, and their share of all its replies). "
                   + ("Its keys hold control characters, which WeensyDB refuses: see "
                      "*Limits the benchmark meets* above." if for_doc else KEY_NOTE))
    return out


def thread_note(label: str, idle: Idle) -> str:
    """A thread per connection: what its kernel figure is made of, checked against
    /proc/meminfo's KernelStack where it moved by many threads."""
    check, per_thread = "", idle.kernel_stack_meminfo
    if per_thread is not None and abs(per_thread - KERNEL_STACK) < KERNEL_STACK / 4:
        check = (f"; /proc/meminfo's KernelStack agrees: "
                 f"+{fmt_bytes(per_thread)} per new thread")
    elif per_thread is not None:
        check = (f"; /proc/meminfo's KernelStack moved by {fmt_bytes(per_thread)} "
                 "per new thread: other programs started or ended threads meanwhile")
    return (f"{label}, {idle.wanted:,} idle: {idle.threads:,} threads; kernel = "
            f"{fmt_bytes(KERNEL_STACK)} stack per thread + page tables (VmPTE "
            f"+{fmt_bytes(idle.pte / idle.held)} per connection){check}")


# ---- the doc ----------------------------------------------------------------------

def markdown(rows: dict, missing: dict, args, machine: str) -> str:
    lines = [machine, "",
             f"{args.seconds} s per load run, {GET_PERCENT}% get / {100 - GET_PERCENT}% set of "
             f"{VALUE_SIZE}-byte values, {args.connections} connections on "
             f"{args.client_threads} client thread{'s' if args.client_threads != 1 else ''}; "
             f"idle connections: "
             f"{', '.join(f'{n:,}' for n in args.idle)}.", ""]
    lines += markdown_table(["server"], group_titles(args), table_rows(rows, missing, args))
    lines.append("")
    lines += [f"- {note}" for note in notes(rows, args, for_doc=True)]
    return "\n".join(lines)


def write_doc(rows: dict, missing: dict, args, machine: str):
    DOC.write(markdown(rows, missing, args, machine))
    print(f"[bench-c10k] table written to {DOC.path.relative_to(ROOT)}")


def cpu_busy(seconds: float = 0.5) -> float | None:
    """How busy the CPUs are right now, 0 to 1, from two readings of /proc/stat
    `seconds` apart. (The load average would not do: it counts threads that merely
    woke up, and a thread server closing 10,000 connections wakes 10,000 of them.)"""
    before = procfs.cpu_times()
    time.sleep(seconds)     # the span measured, not a wait for something to happen
    after = procfs.cpu_times()
    if before is None or after is None:
        return None
    return 1 - (after[1] - before[1]) / max(after[0] - before[0], 1)


def machine_line(busy: float | None) -> str:
    versions = []
    for name in ("memcached", "memcaslap"):
        if program := installed(name):
            result = run([program, "-V"], timeout=T(5))
            text = result.stdout.decode(errors="replace").strip()
            if not result.timed_out:
                versions.append(text.splitlines()[0] if text else name)
    date = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    return (f"Machine: {os.cpu_count()} CPUs ({procfs.cpu_model() or platform.machine()}), Linux "
            f"{platform.release()}, {date}"
            + (f", CPUs {busy:.0%} busy just before the start" if busy is not None else "")
            + "; "
            f"{', '.join(versions)}.")
