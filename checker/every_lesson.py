"""`run.py solutions all`: every available lesson's checks on its solution, several
lessons at a time, each in a network namespace of its own.

An instructor's way to see every solution complete at once (`make test` proves the same
in its self-test, checker/selftest/test_solutions.py). The runs share nothing but the
machine, and much of a run is waiting (for a timeout, a capture, a server), so one more
run than there are cores goes at once (17 lessons took 1 min 48 s so, on 2 busy cores).
Each lesson's report is printed whole, in lesson order, as soon as it and those before it
have finished; the last line names every lesson that is not as expected.
"""
import concurrent.futures
import os
import pathlib
import sys

from checker import manifest
from checker.harness import T, procs

ROOT = pathlib.Path(__file__).resolve().parents[1]
LESSON_TIMEOUT = T(1200)   # far above the slowest lesson (about 2 minutes on 2 cores)


def parallel_runs() -> int:
    return int(os.environ.get("NETCOURSE_JOBS") or (os.cpu_count() or 2) + 1)


def own_namespace_env() -> dict:
    """The environment for one run of the checks, which then enters a network namespace of
    its own: runs side by side must not share a loopback (one holds 10,000 connections)."""
    env = dict(os.environ)
    env.pop("NETCOURSE_NETNS", None)
    return env


def run_one(kind: str, number: str) -> tuple[bool, bytes]:
    env = own_namespace_env()
    argv = [sys.executable, str(ROOT / "checker" / "run.py"), kind, number]
    result = procs.run(argv, timeout=LESSON_TIMEOUT, cwd=ROOT, env=env, grace=10)
    output = result.stdout + result.stderr
    if result.timed_out:
        output += f"[checker] lesson {number}: stopped after {LESSON_TIMEOUT:.0f} s\n".encode()
    return result.returncode == 0 and not result.timed_out, output


def main(kind: str) -> int:
    numbers = [lesson.number for lesson in manifest.available()]
    failed = []
    with concurrent.futures.ThreadPoolExecutor(max_workers=parallel_runs()) as pool:
        runs = [pool.submit(run_one, kind, n) for n in numbers]
        for number, run in zip(numbers, runs):
            ok, output = run.result()
            sys.stdout.buffer.write(output)
            sys.stdout.flush()
            if not ok:
                failed.append(number)
    if failed:
        print(f"[checker] {kind}: not as expected: lessons {', '.join(failed)}")
        return 1
    print(f"[checker] {kind}: all {len(numbers)} lessons as expected")
    return 0
