"""The checker's own tests: every check can fail, and fails for the right reason.

Each mutant (checker/mutants/) is run through the checks it should trip;
each must fail them with the promised words. Every check of every lesson
must be tripped by at least one mutant, and every untouched starter must
fail at least one check.
"""
import concurrent.futures
import importlib
import json
import os
import pathlib
import subprocess
import sys
import tempfile

import pytest

from checker.harness import T, note

from checker.mutants import all_mutants

CHECKER = pathlib.Path(__file__).resolve().parents[1]
ROOT = CHECKER.parent
MUTANTS = all_mutants()
LESSONS = sorted({m.lesson for m in MUTANTS})


def parallel_runs() -> int:
    """How many runs at once: one more than the cores, since a run spends much of its time
    waiting (for a timeout, a watchdog, a capture's barrier) rather than computing.
    NETCOURSE_SELFTEST_JOBS overrides it."""
    return int(os.environ.get("NETCOURSE_SELFTEST_JOBS") or (os.cpu_count() or 2) + 1)


def own_namespace_env() -> dict:
    """The environment for one run of the checks, which then enters a network namespace of
    its own: runs side by side must not share a loopback (one holds 10,000 connections)."""
    env = dict(os.environ)
    env.pop("NETCOURSE_NETNS", None)
    return env


def run_checks(args) -> dict:
    """Runs checker/run.py with args; returns its JSON results (and its output, for failures)."""
    with tempfile.NamedTemporaryFile(suffix=".json") as out:
        proc = subprocess.run([sys.executable, str(CHECKER / "run.py"), *args, "--json", out.name],
                              capture_output=True, timeout=T(600), env=own_namespace_env())
        try:
            results = json.loads(pathlib.Path(out.name).read_text())
        except ValueError:
            results = {"checks": []}
    results["output"] = proc.stdout.decode(errors="replace") + proc.stderr.decode(errors="replace")
    results["exit"] = proc.returncode
    return results


def selected_runs(items) -> set[tuple[str, str]]:
    """The (lesson, mutant name or "starter") runs that the selected tests look at: with
    `-k "mutant_is_caught and 18-"` only lesson 18's mutants run, not all 250."""
    wanted = set()
    for item in items:
        if "runs" not in getattr(item, "fixturenames", ()):
            continue   # other self-tests have parameters of these names too
        params = getattr(item, "callspec", None)
        params = params.params if params else {}
        if "mutant" in params:
            wanted.add((params["mutant"].lesson, params["mutant"].name))
        elif "lesson" in params:
            wanted.add((params["lesson"], "starter"))
    return wanted


@pytest.fixture(scope="module")
def runs(request):
    """Runs the selected mutants and starters at once (they share nothing but loopback)."""
    wanted = selected_runs(request.session.items)
    jobs = {}
    with concurrent.futures.ThreadPoolExecutor(max_workers=parallel_runs()) as pool:
        for m in MUTANTS:
            if (m.lesson, m.name) in wanted:
                only = [a for c in m.caught_by for a in ("--only", c)]
                jobs[(m.lesson, m.name)] = pool.submit(run_checks, ["mutant", m.lesson[:2], m.name, *only])
        for lesson in LESSONS:
            if (lesson, "starter") in wanted:
                jobs[(lesson, "starter")] = pool.submit(run_checks, ["starters", lesson[:2]])
        return {key: job.result() for key, job in jobs.items()}


def lesson_checks(lesson: str) -> dict[str, str]:
    module = importlib.import_module(f"checker.checks.test_{lesson.replace('-', '_')}")
    return {f._nc_check["id"]: f._nc_check["title"] for f in vars(module).values()
            if callable(f) and hasattr(f, "_nc_check")}


@pytest.mark.parametrize("mutant", MUTANTS, ids=lambda m: f"{m.lesson[:2]}-{m.name}")
def test_mutant_is_caught(mutant, runs):
    results = runs[(mutant.lesson, mutant.name)]
    by_id = {c["id"]: c for c in results["checks"]}
    for check_id, words in mutant.caught_by.items():
        got = by_id.get(check_id)
        assert got is not None, f"check {check_id} did not run on mutant {mutant.name}:\n{results['output']}"
        assert got["outcome"] == "failed", (
            f"mutant {mutant.name} ({mutant.bug}) passed check {check_id!r}:\n{results['output']}")
        text = "\n".join(got["lines"])
        assert words in text, f"check {check_id} failed without saying {words!r}:\n{text}"
        note(f"{mutant.bug}: ✗ {got['title']}: {got['lines'][0] if got['lines'] else ''}")


@pytest.mark.parametrize("lesson", LESSONS)
def test_every_check_is_proven_able_to_fail(lesson):
    caught = {c for m in MUTANTS if m.lesson == lesson for c in m.caught_by}
    missing = {i: t for i, t in lesson_checks(lesson).items() if i not in caught and i != "build"}
    assert not missing, f"no mutant proves these checks of {lesson} can fail: {missing}"


STUDENT_PROGRAMS_AT_LEAST = 40


def test_enough_student_programs():
    """Besides the one-token mutants, at least 40 plausible wrong programs, the kind a
    student writes, over every lesson: the checker is measured by such programs."""
    students = [m for m in MUTANTS if m.student]
    without = [lesson for lesson in LESSONS if not any(m.lesson == lesson for m in students)]
    assert len(students) >= STUDENT_PROGRAMS_AT_LEAST, (
        f"{len(students)} student programs, want at least {STUDENT_PROGRAMS_AT_LEAST}")
    assert not without, f"lessons with no student program among their mutants: {without}"


@pytest.mark.parametrize("lesson", LESSONS)
def test_untouched_starter_fails(lesson, runs):
    results = runs[(lesson, "starter")]
    failed = [c["title"] for c in results["checks"] if c["outcome"] == "failed"]
    assert failed, f"the untouched starter of {lesson} passes every check:\n{results['output']}"
    assert results["exit"] == 1, f"the checker itself broke on the starter:\n{results['output']}"
    assert results["checks"][0]["outcome"] == "passed", f"the starter of {lesson} does not build"


def test_build_failure_is_one_cause(tmp_path):
    """A starter that does not compile shows one ✗ (the build) and no cascade."""
    src = ROOT / "build" / "src" / "mutants" / "syntax-error" / "02-server-syscalls"
    src.mkdir(parents=True, exist_ok=True)
    (src / "echo_server.cc").write_text("int main() { this is not C++ }\n")
    results = run_checks(["dir", "02", "build/src/mutants/syntax-error"])
    outcomes = [c["outcome"] for c in results["checks"]]
    assert outcomes[0] == "failed" and set(outcomes[1:]) == {"waiting"}, results["output"]
    assert "[compiler]" in results["output"] and "does not compile" in results["output"]



def test_no_process_left_behind(runs):
    """Every mutant run above is over: none of the programs it started (hung servers
    included) may still be running."""
    left = []
    for proc in pathlib.Path("/proc").glob("[0-9]*"):
        try:
            argv0 = (proc / "cmdline").read_bytes().split(b"\0")[0].decode(errors="replace")
        except OSError:
            continue
        if argv0.startswith(str(ROOT / "build" / "mutants")) or argv0.startswith(str(ROOT / "build" / "starters")):
            left.append(f"pid {proc.name}: {argv0}")
    assert not left, "processes left behind by the checker:\n" + "\n".join(left)


def test_no_file_left_behind(runs):
    """The hostile program that writes a 10 GB file under /tmp was cut at the file size limit,
    and its file removed with everything else its sandbox user owned."""
    from checker.harness import sandbox
    from checker.mutants.hostile import TMP_FILE
    if not sandbox.active() and not sandbox.jail.works():
        pytest.skip("as an ordinary user, without the jail's private /tmp, the checker cannot "
                    "tell a program's files from yours")
    assert not pathlib.Path(TMP_FILE).exists(), f"{TMP_FILE} was left behind"
