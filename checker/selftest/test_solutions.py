"""Every available lesson's reference solution passes all its checks (what `make
solution-NN` shows a student), run in the background beside the mutants."""
import pytest

from checker import manifest

LESSONS = [lesson.name for lesson in manifest.available()]


@pytest.mark.parametrize("lesson", LESSONS)
def test_solution_passes(lesson, runs):
    results = runs[(lesson, "solution")]
    not_passed = [f"{c['outcome']}: {c['title']}" for c in results["checks"]
                  if c["outcome"] not in ("passed", "cannot")]
    assert results["checks"], f"no check ran on the solution of {lesson}:\n{results['output']}"
    assert not not_passed and results["exit"] == 0, (
        f"the solution of {lesson} is not complete ({'; '.join(not_passed) or 'exit ' + str(results['exit'])}):\n"
        f"{results['output']}")
