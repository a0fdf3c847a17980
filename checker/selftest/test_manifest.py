"""course.toml is the one place that lists lessons.

A dummy planned lesson added to course.toml in a copy of the repository shows up
in `make help`, `make progress`, the generated tables of README.md and
docs/course.md, and `make lesson-NN` names it as planned; nothing else is edited.
"""
import importlib
import pathlib
import tempfile

import pytest

from checker import manifest
from checker.harness import T, run
from checker.selftest.course_copy import copy_course

ROOT = pathlib.Path(__file__).resolve().parents[2]

DUMMY = '''
[[lesson]]
number = "42"
slug = "dummy-lesson"
title = "a lesson that exists only in this test"
status = "planned"
build = "nothing, it is a test"
proves = "that course.toml drives the course"
'''


@pytest.fixture(scope="module")
def copy():
    """The repository's files (tracked and new, as in the working tree) in a temporary folder."""
    with tempfile.TemporaryDirectory(prefix="netcourse-manifest-") as tmp:
        yield copy_course(pathlib.Path(tmp) / "repo")


def make(top: pathlib.Path, *targets: str):
    return run(["make", "--no-print-directory", "-s", *targets], cwd=top, timeout=T(120))


def test_a_dummy_lesson_appears_everywhere(copy):
    with open(copy / "course.toml", "a") as f:
        f.write(DUMMY)
    assert make(copy, "tables").returncode == 0
    for name in ("README.md", "docs/course.md"):
        assert "dummy-lesson" in (copy / name).read_text(), f"{name} does not list the new lesson"
    help_text = make(copy, "help").stdout.decode()
    assert "42  dummy-lesson" in help_text and "(planned)" in help_text, help_text
    progress = make(copy, "progress")
    assert progress.returncode == 0
    assert "42-dummy-lesson" in progress.stdout.decode() and "planned" in progress.stdout.decode()
    lesson = run(["/usr/bin/python3", "checker/run.py", "lessons", "42"], cwd=copy, timeout=T(60))
    assert lesson.returncode != 0 and "planned and not written yet" in (lesson.stdout + lesson.stderr).decode()


def test_stale_tables_fail_the_drift_check(copy):
    readme = copy / "README.md"
    readme.write_text(readme.read_text().replace("| 02 | server-syscalls |", "| 02 | renamed-by-hand |"))
    result = run(["/usr/bin/python3", "-m", "checker.manifest", "tables", "--check"], cwd=copy, timeout=T(60))
    assert result.returncode != 0 and "README.md" in result.stderr.decode()


def test_a_mistake_in_course_toml_is_named(copy):
    with open(copy / "course.toml", "a") as f:
        f.write('\n[[lesson]]\nnumber = "43"\nslug = "x"\ntitle = "x"\nstatus = "soon"\n')
    result = make(copy, "help")
    assert result.returncode != 0
    assert "status must be one of" in (result.stdout + result.stderr).decode()


def test_bad_lesson_names_get_a_clear_message():
    for arg in ("abc", "", "01-raw-client-x", "99"):
        result = run(["/usr/bin/python3", "checker/run.py", "lessons", arg], cwd=ROOT, timeout=T(60))
        output = (result.stdout + result.stderr).decode()
        assert result.returncode != 0 and "Traceback" not in output and "lessons: 01" in output, output


def test_every_available_lesson_has_its_parts():
    """Each available lesson has a solution with its programs, a checks module and, if
    named, a mutants module; and no solutions/ folder is missing from course.toml."""
    for lesson in manifest.available():
        folder = ROOT / "solutions" / lesson.name
        for program in lesson.programs:
            assert (folder / f"{program}.cc").is_file(), f"{lesson.name}: no {program}.cc"
        for part in lesson.parts:
            assert (folder / part).is_file(), f"{lesson.name}: no part {part}"
        importlib.import_module(lesson.checks_module)
        if lesson.mutants:
            assert hasattr(importlib.import_module(f"checker.mutants.{lesson.mutants}"), "mutants_for")
    listed = {lesson.name for lesson in manifest.lessons()}
    for folder in (ROOT / "solutions").iterdir():
        assert folder.name in listed, f"solutions/{folder.name} is not in course.toml"
