"""The checker's own tests: every check can fail, and fails for the right reason.

Each mutant (checker/mutants/) is run through the checks it should trip;
each must fail them with the promised words. Every check of every lesson
must be tripped by at least one mutant, and every untouched starter must
fail at least one check.
"""
import importlib
import pathlib

import pytest

from checker.harness import note
from checker.selftest import lesson_runs

ROOT = pathlib.Path(__file__).resolve().parents[2]
MUTANTS = lesson_runs.MUTANTS
LESSONS = lesson_runs.LESSONS
run_checks = lesson_runs.run_checks


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
