#!/usr/bin/env python3
"""Lesson 16's download techniques side by side, with curl and aria2c in the same run.

    make bench-download
    /usr/bin/python3 -m tools.bench.download [--mib M] [--rate R] [--connections N] [--repeat K] [--no-doc]

Serves one object of M MiB (default 64) from course-httpd three ways: read()+write(),
--sendfile, and --rate R MB/s per connection (default 20; a third of the object, so a
single stream takes a few seconds). Fetches it with lesson 16's solution (a 4 KiB,
64 KiB and 1 MiB buffer, --splice, --parallel N, --parallel N --splice), curl and
aria2c -x N (Debian's), K times each (default 5), and prints one table: the median
MB/s (10^6 bytes/s), the CPU seconds (user + system) per GiB, and the system calls
per MiB counted by `strace -f -c` (one more run, from the --sendfile server), then the
ratios: --parallel N against aria2c -x N and one stream under the rate limit, --splice
against the 64 KiB loop in CPU. Every file is checked against the object (SHA-256).
With gnuplot it draws docs/download-techniques.svg (not with --no-doc).

A benchmark, not a test: numbers vary between runs and machines. The programs run
outside the checker's sandbox (NETCOURSE_NO_SANDBOX: the reference solution only),
each in its own process group and killed at a timeout. Exit status 0, or 1 if a
download failed or a tool is missing.
"""
import argparse
import hashlib
import os
import re
import resource
import shutil
import statistics
import tempfile
import time

os.environ["NETCOURSE_NO_SANDBOX"] = "1"   # before the harness reads it: trusted programs only

from checker.harness.procs import run, start_server   # noqa: E402
from checker.harness.timeouts import T                 # noqa: E402
from tools.bench.toolkit import ROOT, installed, progress, run_main, text_table   # noqa: E402

FETCH = ROOT / "build/solutions/16-zero-copy-download/fetch"
HTTPD = ROOT / "build/tools/course-httpd"
SVG = ROOT / "docs/download-techniques.svg"
MiB = 1 << 20
GiB = 1 << 30

tell = progress("bench-download")


def clients(n: int) -> list[tuple[str, list]]:
    """(label, argv builder) of every client: a function (port, path, out) -> argv."""
    def fetch(*args):
        return lambda port, path, out: [FETCH, "127.0.0.1", port, path, out, *args]
    return [
        ("fetch --buffer 4K", fetch("--buffer", "4K")),
        ("fetch --buffer 64K", fetch("--buffer", "64K")),
        ("fetch --buffer 1M", fetch("--buffer", "1M")),
        ("fetch --splice", fetch("--splice")),
        (f"fetch --parallel {n}", fetch("--parallel", str(n))),
        (f"fetch --parallel {n} --splice", fetch("--parallel", str(n), "--splice")),
        ("curl", lambda port, path, out: ["curl", "-sS", "--fail", "-o", out, f"http://127.0.0.1:{port}{path}"]),
        (f"aria2c -x {n}", lambda port, path, out: [
            "aria2c", "-q", f"-x{n}", f"-s{n}", "-k1M", "--allow-overwrite=true", "--auto-file-renaming=false",
            "--file-allocation=none", "-d", os.path.dirname(out), "-o", os.path.basename(out),
            f"http://127.0.0.1:{port}{path}"]),
    ]


def children_cpu() -> float:
    """User + system seconds of every child this process has waited for so far."""
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def timed(argv, timeout) -> tuple[float, float] | str:
    """(wall seconds, CPU seconds) of one run, or why it failed. The wall time includes
    starting the program (a millisecond or two); the CPU time is the kernel's account of
    the child, to the microsecond (/usr/bin/time prints hundredths)."""
    cpu, start = children_cpu(), time.monotonic()
    result = run(list(map(str, argv)), timeout=timeout)
    wall, cpu = time.monotonic() - start, children_cpu() - cpu
    if result.timed_out:
        return f"did not finish within {timeout:.0f} s"
    if result.returncode != 0:
        return f"failed ({result.exit_description()}): {result.stderr.decode(errors='replace').strip()[-200:]}"
    return wall, cpu


def syscalls(argv, timeout) -> int | str:
    """The total number of system calls of one run, from `strace -f -c`."""
    with tempfile.TemporaryDirectory(prefix="netcourse-bench-") as tmp:
        out = os.path.join(tmp, "count")
        result = run(["strace", "-f", "-c", "-o", out, *map(str, argv)], timeout=timeout)
        if result.returncode != 0:
            return f"failed under strace ({result.exit_description()})"
        text = open(out).read()
    m = re.search(r"^[\d.]+\s+[\d.]+\s+\d+\s+(\d+)\s+(?:\d+\s+)?total$", text, re.M)
    return int(m.group(1)) if m else "no total in strace's summary"


def measure(label, make_argv, port, path, want, work, repeat, timeout, count=False) -> dict:
    out = os.path.join(work, "object")
    walls, cpus, problem = [], [], None
    for _ in range(repeat):
        if os.path.exists(out):
            os.unlink(out)
        got = timed(make_argv(port, path, out), timeout)
        if isinstance(got, str):
            problem = got
            break
        with open(out, "rb") as f:
            if hashlib.sha256(f.read()).hexdigest() != want:
                problem = "the file is not the object (SHA-256 differs)"
                break
        walls.append(got[0])
        cpus.append(got[1])
    row = {"problem": problem}
    if not problem:
        size = int(path.rsplit("/", 1)[1])
        wall = statistics.median(walls)
        row["mbs"] = size / 1e6 / wall if wall > 0 else float("inf")
        row["cpu_gib"] = statistics.median(cpus) * GiB / size
        if count:
            n = syscalls(make_argv(port, path, out), timeout)
            row["calls_mib"] = n * MiB / size if isinstance(n, int) else None
    return row


def fmt(value, digits=0) -> str:
    return "-" if value is None else f"{value:,.{digits}f}"


def main() -> int:
    parser = argparse.ArgumentParser(prog="python3 -m tools.bench.download", description=__doc__.split("\n")[0])
    parser.add_argument("--mib", type=int, default=64, help="object size in MiB, at most 64 (default 64)")
    parser.add_argument("--rate", type=float, default=20, help="the rate-limited server's MB/s per connection")
    parser.add_argument("--connections", type=int, default=4, help="N for --parallel and aria2c -x (default 4)")
    parser.add_argument("--repeat", type=int, default=5, help="runs per cell, the median is shown (default 5)")
    parser.add_argument("--no-doc", action="store_true", help=f"do not draw {SVG.relative_to(ROOT)}")
    args = parser.parse_args()
    for program, package in (("curl", "curl"), ("aria2c", "aria2"), ("strace", "strace")):
        if installed(program) is None:
            tell(f"{program} is not installed: sudo apt-get install -y {package}")
            return 1
    for binary in (FETCH, HTTPD):
        if not binary.exists():
            tell(f"{binary.relative_to(ROOT)} is missing: run `make programs`")
            return 1
    size = min(args.mib, 64) * MiB
    rate_size = max(MiB, int(args.rate * 1e6 * args.connections * 0.4) // MiB * MiB)   # ~0.4 s at N× rate
    rate_size = min(rate_size, size)
    servers = [("read+write", [], size), ("sendfile", ["--sendfile"], size),
               (f"rate {args.rate:g} MB/s", ["--rate", f"{args.rate:g}"], rate_size)]
    want = {n: hashlib.sha256(reference(n)).hexdigest() for n in {size, rate_size}}
    rows = {}
    work = tempfile.mkdtemp(prefix="bench-download-", dir=ROOT / "build")
    try:
        for server_label, server_args, n in servers:
            tell(f"course-httpd {' '.join(server_args) or '(read+write)'}: {n // MiB} MiB, "
                 f"{args.repeat} runs per client")
            with start_server(HTTPD, args=server_args) as httpd:
                for label, make_argv in clients(args.connections):
                    timeout = T(30) + (n / (args.rate * 1e6) * 2 if "rate" in server_label else 0)
                    rows[(label, server_label)] = measure(
                        label, make_argv, httpd.port, f"/bytes/{n}", want[n], work, args.repeat, timeout,
                        count=server_label == "sendfile")
    finally:
        shutil.rmtree(work, ignore_errors=True)
    failed = print_table(rows, servers, args)
    print_ratios(rows, servers, args)
    if not args.no_doc:
        plot(rows, servers, args)
    return 1 if failed else 0


def reference(n: int) -> bytes:
    """course-httpd's text (64-byte numbered lines), the first n bytes."""
    lines = b"".join(b"%08d the quick brown fox jumps over the lazy dog 0123456789\n" % (i + 1)
                     for i in range(n // 64 + 1))
    return lines[:n]


def print_table(rows, servers, args) -> bool:
    labels = [label for label, _ in clients(args.connections)]
    groups = [(s, ("MB/s", "CPU s/GiB")) for s, _, _ in servers] + [("from sendfile", ("calls/MiB",))]
    body, failed = [], False
    for label in labels:
        row = [label]
        for server_label, _, _ in servers:
            cell = rows[(label, server_label)]
            if cell["problem"]:
                failed = True
                row += ["failed", "-"]
            else:
                row += [fmt(cell["mbs"]), fmt(cell["cpu_gib"], 2)]
        row.append(fmt(rows[(label, "sendfile")].get("calls_mib"), 1))
        body.append(row)
    print()
    for line in text_table(["client"], groups, body):
        print(line)
    for (label, server_label), cell in rows.items():
        if cell["problem"]:
            print(f"  {label} from {server_label}: {cell['problem']}")
    print(f"\n(MB/s: the median of {args.repeat} runs, 10^6 bytes per second; CPU s/GiB: the client's user + "
          "system time; calls/MiB: every system call of one run under strace -f -c, startup included)")
    return failed


def ratio(a, b) -> str:
    return "-" if not a or not b else f"{a / b:.2f}×"


def print_ratios(rows, servers, args):
    n = args.connections
    limited = servers[2][0]
    cell = lambda label, server: rows[(label, server)] if not rows[(label, server)]["problem"] else {}
    par, aria = cell(f"fetch --parallel {n}", limited), cell(f"aria2c -x {n}", limited)
    one, curl = cell("fetch --buffer 64K", limited), cell("curl", limited)
    print(f"\nunder --rate {args.rate:g} MB/s per connection:")
    print(f"  fetch --parallel {n} / aria2c -x {n}:        {ratio(par.get('mbs'), aria.get('mbs'))}"
          "   (the lesson's goal: at least 0.9×)")
    print(f"  fetch --parallel {n} / one stream (64K):    {ratio(par.get('mbs'), one.get('mbs'))}"
          f"   (N = {n} connections: about {n}× expected)")
    print(f"  fetch 64K / curl:                        {ratio(one.get('mbs'), curl.get('mbs'))}")
    for server in ("read+write", "sendfile"):
        splice, copy = cell("fetch --splice", server), cell("fetch --buffer 64K", server)
        print(f"from the {server} server: CPU per GiB, --splice / 64 KiB loop: "
              f"{ratio(splice.get('cpu_gib'), copy.get('cpu_gib'))}   (the goal: below 1×); "
              f"MB/s fetch 64K / curl: {ratio(copy.get('mbs'), cell('curl', server).get('mbs'))}")


def plot(rows, servers, args):
    gnuplot = installed("gnuplot")
    if gnuplot is None:
        tell("gnuplot is not installed: no plot (sudo apt-get install -y gnuplot-nox)")
        return
    labels = [label for label, _ in clients(args.connections)]
    data = "\n".join(f'"{label}" ' + " ".join(
        f"{rows[(label, s)].get('mbs', 0) or 0:.1f}" for s, _, _ in servers) for label in labels)
    titles = ", ".join(f'$data using {i + 2}:xtic(1) title "{s}"' for i, (s, _, _) in enumerate(servers))
    script = f"""
set terminal svg size 900,560 dynamic font "sans,12" background rgb "white" noenhanced
set output "{SVG}"
set encoding utf8
set title "One object over loopback: MB/s by client and server (lesson 16)"
set style data histograms
set style histogram clustered gap 1
set style fill solid 0.8 border -1
set ylabel "MB/s (median)"
set logscale y
set yrange [1:*]
set xtics rotate by -30
set key top right box
set grid ytics
$data << EOD
{data}
EOD
plot {titles}
"""
    SVG.parent.mkdir(parents=True, exist_ok=True)
    result = run([gnuplot], timeout=T(30), input=script.encode())
    if result.returncode != 0 or result.timed_out:
        tell(f"gnuplot failed: no plot\n{result.stderr.decode(errors='replace').strip()}")
        return
    tell(f"plot written to {SVG.relative_to(ROOT)}")


if __name__ == "__main__":
    run_main(main, "bench-download")
