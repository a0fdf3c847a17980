"""The checks run on every solution, untouched starter and mutant, in the background.

Each run is a whole `checker/run.py` in a network namespace of its own, and much of it
is waiting (a timeout, a watchdog, a capture's barrier): the runs start as soon as the
self-tests are collected, several at once, while pytest goes through the other
self-tests; the tests that look at the runs come last and wait for them.
"""
import concurrent.futures
import json
import os
import pathlib
import subprocess
import sys
import tempfile
import time

from checker.every_lesson import own_namespace_env
from checker.harness import T
from checker.mutants import all_mutants

CHECKER = pathlib.Path(__file__).resolve().parents[1]
ROOT = CHECKER.parent
MUTANTS = all_mutants()
LESSONS = sorted({m.lesson for m in MUTANTS})
TIMINGS = ROOT / "build" / "selftest-runs.json"


def parallel_runs() -> int:
    """How many runs at once: more than the cores, since a run spends most of its time
    waiting rather than computing (all mutants and starters, 3 at once on 2 cores: 0.88
    of a core busy on average). NETCOURSE_SELFTEST_JOBS overrides it."""
    return int(os.environ.get("NETCOURSE_SELFTEST_JOBS") or 2 * (os.cpu_count() or 2) + 1)


def run_checks(args, env=None, tmp=None) -> dict:
    """Runs checker/run.py with args; returns its JSON results (and its output, for failures).
    env and tmp are the environment and temporary folder as they were when the runs began:
    a self-test running meanwhile may change both for a while (TMPDIR, TSAN_OPTIONS)."""
    started = time.monotonic()
    with tempfile.NamedTemporaryFile(suffix=".json", dir=tmp) as out:
        proc = subprocess.run([sys.executable, str(CHECKER / "run.py"), *args, "--json", out.name],
                              capture_output=True, timeout=T(600), env=env or own_namespace_env())
        try:
            results = json.loads(pathlib.Path(out.name).read_text())
        except ValueError:
            results = {"checks": []}
    results["output"] = proc.stdout.decode(errors="replace") + proc.stderr.decode(errors="replace")
    results["exit"] = proc.returncode
    results["seconds"] = round(time.monotonic() - started, 1)
    return results


def uses_runs(item) -> bool:
    return "runs" in getattr(item, "fixturenames", ())


# The tests that look at a whole lesson's run, and which program that run checks.
WHOLE_LESSON_RUNS = {"test_untouched_starter_fails": "starter", "test_solution_passes": "solution"}


def selected_runs(items) -> set[tuple[str, str]]:
    """The (lesson, mutant name, or "starter" or "solution") runs that the selected tests look
    at: with `-k "mutant_is_caught and 18-"` only lesson 18's mutants run, not all 250."""
    wanted = set()
    for item in items:
        if not uses_runs(item):
            continue   # other self-tests have parameters of these names too
        params = getattr(item, "callspec", None)
        params = params.params if params else {}
        if "mutant" in params:
            wanted.add((params["mutant"].lesson, params["mutant"].name))
        elif "lesson" in params:
            wanted.add((params["lesson"], WHOLE_LESSON_RUNS[item.originalname]))
    return wanted


def argv_of(lesson: str, name: str) -> list[str]:
    if name == "starter":
        return ["starters", lesson[:2]]
    if name == "solution":
        return ["solutions", lesson[:2]]
    mutant = next(m for m in MUTANTS if (m.lesson, m.name) == (lesson, name))
    return ["mutant", lesson[:2], name, *[a for c in mutant.caught_by for a in ("--only", c)]]


class Background:
    """The runs, started once, their results awaited by whichever test needs them first."""

    def __init__(self):
        self.pool = None
        self.jobs: dict[tuple[str, str], concurrent.futures.Future] = {}
        self.done = None

    def start(self, items):
        wanted = selected_runs(items)
        if not wanted or self.pool is not None:
            return
        self.pool = concurrent.futures.ThreadPoolExecutor(max_workers=parallel_runs())
        env, tmp = own_namespace_env(), tempfile.gettempdir()
        # The longest runs first (a whole lesson runs every check), so none is left alone at the end.
        for key in sorted(wanted, key=lambda key: (key[1] not in WHOLE_LESSON_RUNS.values(), key)):
            self.jobs[key] = self.pool.submit(run_checks, argv_of(*key), env, tmp)

    def results(self, items) -> dict:
        self.start(items)   # started already, unless the collection hook did not run
        if self.done is None:
            self.done = {key: job.result() for key, job in self.jobs.items()}
            self.stop()
            write_timings(self.done)
        return self.done

    def stop(self):
        if self.pool is not None:
            self.pool.shutdown(wait=False, cancel_futures=True)


BACKGROUND = Background()


def write_timings(done: dict):
    """Where the self-test's time goes, run by run and check by check (slowest first), for
    whoever keeps `make test` inside its budget."""
    rows = [{"lesson": lesson, "run": name, "seconds": r["seconds"],
             "checks": {c["id"]: c.get("seconds", 0) for c in r["checks"]}}
            for (lesson, name), r in done.items()]
    rows.sort(key=lambda row: -row["seconds"])
    TIMINGS.parent.mkdir(exist_ok=True)
    TIMINGS.write_text(json.dumps(rows, indent=1))
