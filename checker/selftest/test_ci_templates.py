"""The CI templates of grading/, run here as their CI would run them.

GitHub Actions and GitLab CI cannot run on this machine, so each template is read
(YAML), its layout checked (the course's checker comes from the course's repository,
the student's code from the student's), and its own shell lines run in a directory laid
out the way its runner lays one out. The lines that install packages or clone are left
out (deps.sh is CI's own first step here); the grade is real. The student's repository
carries a checker edited to pass everything: the grade must not use it.
"""
import os
import pathlib
import shutil
import subprocess
import sys
import xml.etree.ElementTree as ET

import pytest

from checker.harness import T, note
from checker.selftest.course_copy import copy_course

yaml = pytest.importorskip("yaml", reason="python3-yaml (tools/deps.sh) reads the templates")

ROOT = pathlib.Path(__file__).resolve().parents[2]
SETUP_WORDS = ("apt-get", "deps.sh", "git clone")   # the lines left out: installing and cloning


def student_repository(path: pathlib.Path) -> pathlib.Path:
    """A student's netcourse repository: the untouched starter of lesson 01 in lessons/, and
    a checker edited so that every check of lesson 01 passes at once."""
    copy_course(path)   # (its lessons/ are the starters, as committed)
    (path / "checker" / "conftest.py").write_text(CHEAT)
    return path


CHEAT = """\
def pytest_collection_modifyitems(items):
    for item in items:
        item.runtest = lambda: None   # every check passes without looking
"""


def test_the_cheat_works_where_it_is_used(tmp_path):
    """The edited checker of the student's repository does pass the untouched starter: so a
    partial grade below proves it was not the one used."""
    student = student_repository(tmp_path / "student")
    proc = subprocess.run([sys.executable, "checker/run.py", "lessons", "01"], cwd=student, capture_output=True,
                          text=True, timeout=T(300))
    assert proc.returncode == 0 and "lesson 01 complete" in proc.stdout, proc.stdout[-3000:] + proc.stderr[-2000:]


def run_lines(lines: list[str], cwd: pathlib.Path, env: dict) -> str:
    """Runs each shell line as its runner would (bash -e), stopping at the first failure."""
    output = []
    for line in lines:
        proc = subprocess.run(["bash", "-e", "-c", line], cwd=cwd, env=env, capture_output=True, text=True,
                              timeout=T(900))
        output.append(f"$ {line}\n{proc.stdout}{proc.stderr}")
        assert proc.returncode == 0, "\n".join(output)[-4000:]
    return "\n".join(output)


def assert_partial_grade(junit: pathlib.Path, output: str):
    """The starter of lesson 01 scored by the course's checker: some checks fail."""
    cases = ET.parse(junit).getroot().iter("testcase")
    failed = [case.get("name") for case in cases if case.find("failure") is not None]
    assert failed, "every check passed: the student's edited checker was used\n" + output[-3000:]
    note(f"{len(failed)} checks of the untouched starter failed, as they should")


def test_github_workflow(tmp_path):
    flow = yaml.safe_load((ROOT / "grading" / "github-classroom.yml").read_text())
    job = flow["jobs"]["grade"]
    assert job["container"]["image"].startswith("debian:") and "--privileged" in job["container"]["options"]
    steps = job["steps"]
    checkouts = [s for s in steps if s.get("uses", "").startswith("actions/checkout")]
    course = next(s["with"]["path"] for s in checkouts if s["with"].get("repository") == "${{ env.COURSE_REPO }}")
    student = next(s["with"]["path"] for s in checkouts if "repository" not in s["with"])
    assert course != student
    upload = next(s for s in steps if s.get("uses", "").startswith("actions/upload-artifact"))
    assert upload.get("if") == "always()"

    workspace = tmp_path / "workspace"
    copy_course(workspace / course)
    student_repository(workspace / student)
    env = {**os.environ, **{k: str(v) for k, v in flow["env"].items()}, "GITHUB_WORKSPACE": str(workspace),
           "GRADE_LESSONS": "01"}
    lines = [s["run"] for s in steps if "run" in s and not any(w in s["run"] for w in SETUP_WORDS)]
    assert any("grade" in line for line in lines)
    output = run_lines(lines, workspace, env)
    for path in upload["with"]["path"].split():
        assert (workspace / path).exists(), f"the artifact {path} was not written\n{output[-3000:]}"
    assert_partial_grade(workspace / course / "build" / "grade" / "junit.xml", output)


def test_gitlab_job(tmp_path):
    job = yaml.safe_load((ROOT / "grading" / "gitlab-ci.yml").read_text())["grade"]
    assert job["image"].startswith("debian:")
    assert any("git clone" in line and "$COURSE_REPO" in line for line in job["before_script"])

    project = student_repository(tmp_path / "project")
    course_dir = copy_course(tmp_path / "course")   # what the clone would have made
    env = {**os.environ, **{k: str(v) for k, v in job["variables"].items()},
           "COURSE_DIR": str(course_dir), "CI_PROJECT_DIR": str(project), "GRADE_LESSONS": "01"}
    setup = [line for line in job["before_script"] if not any(w in line for w in SETUP_WORDS)]
    output = run_lines(setup + job["script"], project, env)
    for path in job["artifacts"]["paths"]:
        assert (project / path).exists(), f"the artifact {path} was not written\n{output[-3000:]}"
    junit = project / job["artifacts"]["reports"]["junit"]
    assert_partial_grade(junit, output)
    shutil.rmtree(project / "grade")
