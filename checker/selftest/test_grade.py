"""`make grade`: scores, the two report files, and a lesson that cannot finish.

Graded here: lessons 01 and 02 (the quickest), from the solutions (full marks),
from freshly generated starters (some points, not all), and with a lesson time
limit too short to finish (that lesson scores 0, the run goes on).
"""
import json
import os
import pathlib
import shutil
import subprocess
import sys
import xml.etree.ElementTree as ET

import pytest

from checker import manifest
from checker.harness import T
from checker.harness.checks import checks_of
from checker.selftest.course_copy import copy_course

ROOT = pathlib.Path(__file__).resolve().parents[2]
LESSONS = ["01", "02"]

# Gradescope's documented fields (gradescope-autograders.readthedocs.io, "Autograder Specifications").
TOP_FIELDS = {"score", "execution_time", "output", "visibility", "stdout_visibility", "extra_data", "tests",
              "leaderboard", "output_format", "test_output_format", "test_name_format"}
TEST_FIELDS = {"score", "max_score", "status", "name", "name_format", "number", "output",
               "output_format", "tags", "visibility", "extra_data"}
VISIBILITIES = {"hidden", "after_due_date", "after_published", "visible"}


def grade(tmp_path, *args, env=None) -> tuple[subprocess.CompletedProcess, dict, ET.ElementTree]:
    out = tmp_path / "grade"
    proc = subprocess.run([sys.executable, "-m", "checker.grade", "--out", str(out), *args],
                          cwd=ROOT, capture_output=True, text=True, timeout=T(900),
                          env={**os.environ, **(env or {})})
    assert (out / "results.json").exists(), proc.stdout + proc.stderr
    return proc, json.loads((out / "results.json").read_text()), ET.parse(out / "junit.xml")


def assert_gradescope_format(results: dict):
    assert set(results) <= TOP_FIELDS, f"fields Gradescope does not know: {set(results) - TOP_FIELDS}"
    assert isinstance(results["score"], (int, float))
    for test in results["tests"]:
        assert set(test) <= TEST_FIELDS, f"fields Gradescope does not know: {set(test) - TEST_FIELDS}"
        assert {"name", "score", "max_score", "output", "visibility", "number"} <= set(test)
        assert 0 <= test["score"] <= test["max_score"]
        assert test["visibility"] in VISIBILITIES
        assert test["status"] in ("passed", "failed")
    assert results["score"] == pytest.approx(sum(t["score"] for t in results["tests"]))


def expected_checks() -> int:
    return sum(len(checks_of(manifest.find(n))) for n in LESSONS)


def test_solutions_get_full_marks(tmp_path):
    proc, results, junit = grade(tmp_path, "--lessons", " ".join(LESSONS), "--submission", "solutions")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert_gradescope_format(results)
    assert len(results["tests"]) == expected_checks()
    assert all(t["score"] == t["max_score"] for t in results["tests"]), proc.stdout
    root = junit.getroot()
    assert root.tag == "testsuites" and len(root.findall("testsuite")) == len(LESSONS)
    assert len(root.findall(".//testcase")) == expected_checks()
    assert not root.findall(".//failure")
    assert "100%" in proc.stdout


def test_starters_get_some_points_and_min_gates(tmp_path):
    starters = tmp_path / "starters"
    subprocess.run([sys.executable, "-m", "tools.make_starters", "--out", str(starters)], cwd=ROOT,
                   check=True, stdout=subprocess.DEVNULL, timeout=T(120))
    proc, results, junit = grade(tmp_path, "--lessons", "01-02", "--submission", str(starters), "--min", "90")
    assert proc.returncode == 1 and "below MIN=90%" in proc.stdout, proc.stdout + proc.stderr
    assert_gradescope_format(results)
    assert 0 < results["score"] < sum(t["max_score"] for t in results["tests"]), proc.stdout
    failures = junit.getroot().findall(".//failure")
    assert failures and all(f.get("message") for f in failures)
    failed = [t for t in results["tests"] if t["status"] == "failed"]
    assert all(t["output"] for t in failed), "a failed check's output must say why"


def test_a_lesson_that_cannot_finish_costs_only_its_points(tmp_path):
    """Stopped at its time limit, a lesson's run still removes what it made under TMPDIR."""
    private_tmp = tmp_path / "tmp"
    private_tmp.mkdir()
    proc, results, _ = grade(tmp_path, "--lessons", "01 02", "--submission", "solutions",
                             env={"NETCOURSE_GRADE_LESSON_TIMEOUT": "2", "TMPDIR": str(private_tmp)})
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "did not finish within 2 s" in proc.stdout
    assert results["score"] == 0 and len(results["tests"]) == expected_checks()
    left = sorted(p.name for p in private_tmp.iterdir())
    assert not left, f"left in TMPDIR by the stopped runs: {left}"


def test_a_missing_lesson_folder_scores_zero(tmp_path):
    submission = tmp_path / "submission"
    submission.mkdir()
    proc, results, _ = grade(tmp_path, "--lessons", "01", "--submission", str(submission))
    assert proc.returncode == 0 and "no folder lessons/01-raw-client/" in proc.stdout, proc.stdout
    assert results["score"] == 0


@pytest.mark.parametrize("spec", ["abc", "99", "01-xx"])
def test_a_bad_lesson_list_is_named(spec, tmp_path):
    proc = subprocess.run([sys.executable, "-m", "checker.grade", "--lessons", spec, "--out", str(tmp_path)],
                          cwd=ROOT, capture_output=True, text=True, timeout=T(60))
    assert proc.returncode != 0 and "[grade]" in proc.stderr and "Traceback" not in proc.stderr, proc.stderr


@pytest.mark.parametrize("change", ["one line of a check", "a conftest.py added"])
def test_a_modified_checker_is_refused(change, tmp_path):
    course = tmp_path / "course"
    copy_course(course)
    if change == "one line of a check":
        check = course / "checker" / "checks" / "test_01_raw_client.py"
        check.write_text(check.read_text() + "\n# every check passes now\n")
        named = "checker/checks/test_01_raw_client.py: modified"
    else:
        (course / "checker" / "conftest.py").write_text("def pytest_runtest_call(item): pass\n")
        named = "checker/conftest.py: not part of the course's checker"
    proc = subprocess.run([sys.executable, "-m", "checker.grade", "--lessons", "01", "--out", str(tmp_path / "out")],
                          cwd=course, capture_output=True, text=True, timeout=T(120))
    assert proc.returncode == 2, proc.stdout + proc.stderr
    assert "checker modified: grading refused" in proc.stderr and named in proc.stderr, proc.stderr
    assert not (tmp_path / "out" / "results.json").exists()


def test_the_course_as_committed_is_trusted(tmp_path):
    copy_course(tmp_path)
    proc = subprocess.run([sys.executable, "-m", "checker.trust", "check"], cwd=tmp_path,
                          capture_output=True, text=True, timeout=T(60))
    assert proc.returncode == 0, proc.stderr


RUN_AUTOGRADER = ROOT / "grading" / "gradescope" / "run_autograder"


@pytest.mark.parametrize("layout", ["lesson folders", "a whole repository"])
def test_gradescope_run_autograder(layout, tmp_path):
    """run_autograder in a directory laid out like Gradescope's /autograder: the solutions
    submitted as bare lesson folders get full marks; the starters, as a repository with
    lessons/, get some."""
    submission, results = tmp_path / "submission", tmp_path / "results"
    if layout == "lesson folders":
        source, full = ROOT / "solutions", True
        lessons = submission
    else:
        source, full = tmp_path / "starters", False
        subprocess.run([sys.executable, "-m", "tools.make_starters", "--out", str(source)], cwd=ROOT,
                       check=True, stdout=subprocess.DEVNULL, timeout=T(120))
        lessons = submission / "lessons"
    lessons.mkdir(parents=True)
    shutil.copytree(source / "01-raw-client", lessons / "01-raw-client")
    env = {**os.environ, "NETCOURSE_SOURCE": str(ROOT), "NETCOURSE_SUBMISSION": str(submission),
           "NETCOURSE_RESULTS": str(results), "LESSONS": "01"}
    proc = subprocess.run([str(RUN_AUTOGRADER)], cwd=tmp_path, env=env, capture_output=True, text=True,
                          timeout=T(600))
    assert proc.returncode == 0, proc.stdout + proc.stderr
    graded = json.loads((results / "results.json").read_text())
    assert_gradescope_format(graded)
    most = sum(t["max_score"] for t in graded["tests"])
    assert len(graded["tests"]) == len(checks_of(manifest.find("01")))
    assert (graded["score"] == most) if full else (0 < graded["score"] < most), proc.stdout
