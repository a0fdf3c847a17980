"""`make grade`: grades the code in lessons/ (or a submission elsewhere) for a class.

    python3 -m checker.grade [--lessons "01 03-05"] [--min PERCENT] [--submission DIR]

For each lesson it runs the same checks as `make lesson-NN`, on a copy of the
submission (so nothing is built into it), with a time limit for the whole lesson.
It prints a score table and writes, in build/grade/:

    results.json   Gradescope's autograder format (score, tests[] with name, score,
                   max_score, output, visibility, number)
    junit.xml      one testcase per check, for GitHub's and GitLab's test reports
    logs/NN.log    what the checker printed for lesson NN (its first MiB)

Points: one per check, unless course.toml gives a lesson `points = {check_id = N}`.
A check that finds a bug on purpose scores like any other. One lesson's crash or
timeout costs that lesson's points, never the run. The exit status is 0 once
grading is done, whatever the score; with --min, 1 below that percentage.
"""
import argparse
import json
import os
import pathlib
import shutil
import sys
import time
import xml.etree.ElementTree as ET
from dataclasses import dataclass, field

from checker import manifest, trust
from checker.harness import procs
from checker.harness.checks import checks_of

ROOT = pathlib.Path(__file__).resolve().parent.parent
OUT = ROOT / "build" / "grade"
COPY = ROOT / "build" / "src" / "graded"        # the submission's copy
BINARIES = ROOT / "build" / "graded"            # built from it (the Makefile's rule)
LESSON_TIMEOUT = float(os.environ.get("NETCOURSE_GRADE_LESSON_TIMEOUT") or 1200)
LOG_LIMIT = 1 << 20
OUTPUT_LIMIT = 4000                              # characters of a test's output in results.json


@dataclass
class Check:
    id: str
    title: str
    max_score: float
    score: float = 0.0
    status: str = "failed"        # passed / failed
    output: str = ""


@dataclass
class LessonGrade:
    lesson: manifest.Lesson
    checks: list = field(default_factory=list)
    problem: str = ""             # the checker could not finish the lesson: why
    seconds: float = 0.0

    @property
    def score(self) -> float:
        return sum(c.score for c in self.checks)

    @property
    def max_score(self) -> float:
        return sum(c.max_score for c in self.checks)


# ---- which lessons --------------------------------------------------------------

def selected_lessons(spec: str) -> list[manifest.Lesson]:
    """ "01 03-05" -> lessons 01, 03, 04, 05 (available ones only); "" -> every available one."""
    available = manifest.available()
    if not spec.strip():
        return available
    wanted = set()
    for word in spec.replace(",", " ").split():
        low, _, high = word.partition("-")
        if not low.isdigit() or (high and not high.isdigit()):
            raise SystemExit(f"[grade] LESSONS={spec!r}: {word!r} is not a lesson number or a range like 03-05")
        wanted.update(range(int(low), int(high or low) + 1))
    chosen = [lesson for lesson in available if int(lesson.number) in wanted]
    unknown = sorted(wanted - {int(lesson.number) for lesson in available})
    if unknown:
        raise SystemExit(f"[grade] no available lesson {', '.join(f'{n:02d}' for n in unknown)}; "
                         f"the lessons are {', '.join(lesson.number for lesson in available)}")
    return chosen


# ---- running one lesson -------------------------------------------------------------

def copy_submission(submission: pathlib.Path, lessons: list[manifest.Lesson]):
    """Copies each lesson's folder of the submission (links kept as links, not followed),
    with fresh modification times and no binaries from an earlier grading: make must
    rebuild everything from this submission's sources."""
    for old in (COPY, BINARIES):
        shutil.rmtree(old, ignore_errors=True)
    COPY.mkdir(parents=True)
    for lesson in lessons:
        source = submission / lesson.name
        if source.is_dir():
            shutil.copytree(source, COPY / lesson.name, symlinks=True, copy_function=shutil.copy)


def run_lesson(lesson: manifest.Lesson) -> tuple[dict | None, str, float]:
    """Runs the lesson's checks on the copy; returns (JSON results or None, why not, seconds).
    At the time limit the run is stopped the way Ctrl-C would stop it (SIGTERM: it kills
    what it started and removes its temporary files), then killed if it has not ended."""
    results_file = OUT / "runs" / f"{lesson.number}.json"
    results_file.unlink(missing_ok=True)
    argv = [sys.executable, str(ROOT / "checker" / "run.py"), "dir", lesson.number,
            str(COPY.relative_to(ROOT)), "--json", str(results_file)]
    result = procs.run(argv, timeout=LESSON_TIMEOUT, cwd=ROOT, grace=10)
    (OUT / "logs" / f"{lesson.number}.log").write_bytes(result.stdout[:LOG_LIMIT] + result.stderr[:LOG_LIMIT])
    if result.timed_out:
        return None, f"the checks did not finish within {LESSON_TIMEOUT:.0f} s: stopped", result.seconds
    try:
        results = json.loads(results_file.read_text())
    except (OSError, ValueError):
        return None, f"the checker stopped without results ({result.exit_description()})", result.seconds
    return results, "", result.seconds


# ---- scoring --------------------------------------------------------------------------

def grade_lesson(lesson: manifest.Lesson) -> LessonGrade:
    points = dict(lesson.points)
    grade = LessonGrade(lesson, [Check(i, title, float(points.get(i, 1))) for i, title in checks_of(lesson)])
    if not (COPY / lesson.name).is_dir():
        grade.problem = f"no folder lessons/{lesson.name}/ in the submission"
        for check in grade.checks:
            check.output = grade.problem
        return grade
    results, grade.problem, grade.seconds = run_lesson(lesson)
    by_id = {r["id"]: r for r in (results or {}).get("checks", [])}
    for check in grade.checks:
        result = by_id.get(check.id)
        if result is None:
            check.output = grade.problem or "did not run"
            continue
        lines = result.get("lines") or []
        if result["outcome"] == "passed":
            check.score, check.status = check.max_score, "passed"
        elif result["outcome"] == "waiting":
            lines = [f"not run: it waits for “{result['waiting_for']}” to pass"]
        elif result["outcome"] == "cannot":
            lines = ["could not be checked on the grading machine (0 points: tell your instructor)", *lines]
        check.output = "\n".join(lines)[:OUTPUT_LIMIT]
    return grade


# ---- the three reports ---------------------------------------------------------------------

def points(x: float) -> str:
    return f"{x:g}"


def print_table(grades: list[LessonGrade]):
    print(f"[grade] {'lesson':<28} {'checks':>7} {'points':>11}")
    for g in grades:
        passed = sum(c.status == "passed" for c in g.checks)
        checks = f"{passed}/{len(g.checks)}"
        score = f"{points(g.score)}/{points(g.max_score)}"
        name = f"{g.lesson.number} {g.lesson.slug}"
        print(f"        {name:<28} {checks:>7} {score:>11}" + (f"   {g.problem}" if g.problem else ""))
    score, most = sum(g.score for g in grades), sum(g.max_score for g in grades)
    total = f"{points(score)}/{points(most)}"
    print(f"        {'total':<28} {'':>7} {total:>11}   {percent(score, most):.0f}%")


def percent(score: float, most: float) -> float:
    return 100.0 * score / most if most else 0.0


def gradescope_json(grades: list[LessonGrade], seconds: float) -> dict:
    tests = []
    for g in grades:
        for i, c in enumerate(g.checks, 1):
            tests.append({"name": f"{g.lesson.number} {g.lesson.slug}: {c.title}",
                          "number": f"{int(g.lesson.number)}.{i}",
                          "score": c.score, "max_score": c.max_score, "status": c.status,
                          "output": c.output, "visibility": "visible"})
    return {"score": sum(g.score for g in grades), "execution_time": round(seconds),
            "output": "; ".join(f"lesson {g.lesson.number}: {g.problem}" for g in grades if g.problem),
            "visibility": "visible", "tests": tests}


def junit_xml(grades: list[LessonGrade]) -> ET.ElementTree:
    suites = ET.Element("testsuites", name="netcourse",
                        tests=str(sum(len(g.checks) for g in grades)),
                        failures=str(sum(c.status != "passed" for g in grades for c in g.checks)))
    for g in grades:
        suite = ET.SubElement(suites, "testsuite", name=g.lesson.name, tests=str(len(g.checks)),
                              failures=str(sum(c.status != "passed" for c in g.checks)),
                              time=f"{g.seconds:.1f}")
        for c in g.checks:
            case = ET.SubElement(suite, "testcase", classname=g.lesson.name, name=c.title)
            if c.status != "passed":
                first = c.output.splitlines()[0] if c.output else "failed"
                failure = ET.SubElement(case, "failure", message=first[:200])
                failure.text = c.output
    return ET.ElementTree(suites)


def refuse_a_modified_checker():
    problems = trust.differences()
    if problems:
        print("[grade] checker modified: grading refused", file=sys.stderr)
        for line in problems[:10]:
            print(f"        {line}", file=sys.stderr)
        print("        (grade with the course's own copy: make grade CHECKER=path/to/netcourse; "
              "a course developer who changed the checker runs `make trusted`)", file=sys.stderr)
        raise SystemExit(2)


def main() -> int:
    parser = argparse.ArgumentParser(prog="python3 -m checker.grade", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--lessons", default="", help='e.g. "01 03-05" (default: every available lesson)')
    parser.add_argument("--min", type=float, help="exit 1 if the score is below this percentage")
    parser.add_argument("--submission", default=str(ROOT / "lessons"),
                        help="the folder holding NN-slug/ folders (default: lessons/)")
    parser.add_argument("--out", default=str(OUT), help="where results.json and junit.xml go")
    args = parser.parse_args()
    lessons = selected_lessons(args.lessons)
    refuse_a_modified_checker()
    submission = pathlib.Path(args.submission).resolve()
    if not submission.is_dir():
        raise SystemExit(f"[grade] no submission folder {submission}")
    for sub in ("runs", "logs"):
        (OUT / sub).mkdir(parents=True, exist_ok=True)
    copy_submission(submission, lessons)
    start = time.monotonic()
    grades = []
    for lesson in lessons:
        print(f"[grade] lesson {lesson.number} {lesson.slug} …", flush=True)
        grades.append(grade_lesson(lesson))
    seconds = time.monotonic() - start
    out = pathlib.Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    (out / "results.json").write_text(json.dumps(gradescope_json(grades, seconds), indent=1) + "\n")
    junit_xml(grades).write(out / "junit.xml", encoding="utf-8", xml_declaration=True)
    print_table(grades)
    print(f"[grade] wrote {out / 'results.json'} and {out / 'junit.xml'} "
          f"(the checker's output per lesson: {OUT / 'logs'}/NN.log)")
    score, most = sum(g.score for g in grades), sum(g.max_score for g in grades)
    if args.min is not None and percent(score, most) < args.min:
        print(f"[grade] {percent(score, most):.0f}% is below MIN={args.min:g}%")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
