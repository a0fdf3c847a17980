"""The course manifest, course.toml: which lessons exist and what each one expects.

    from checker import manifest
    manifest.lessons()            every lesson, in order (planned ones too)
    manifest.available()          the lessons with a solution and checks
    manifest.find("13")           one lesson, by number ("13", "3") or name ("13-select")

As a command (the Makefile uses it; python3 -m checker.manifest …):
    make-vars                     Make variables: LESSONS, and each lesson's PROGRAMS_/PARTS_
    names                         the available lessons' names, one per line
    help                          the lessons, for `make help`
    tables [--write | --check]    the lesson tables of README.md and docs/course.md
"""
import argparse
import pathlib
import re
import sys
import tomllib
from dataclasses import dataclass, field

ROOT = pathlib.Path(__file__).resolve().parent.parent
MANIFEST = ROOT / "course.toml"
STATUSES = ("available", "planned")


class ManifestError(Exception):
    pass


@dataclass(frozen=True)
class Lesson:
    number: str                  # "01"
    slug: str                    # "raw-client"
    title: str
    status: str                  # "available" or "planned"
    build: str = ""              # what the student builds (README table)
    proves: str = ""             # what the checker proves (README table)
    programs: tuple = ()         # NAME for each NAME.cc
    parts: tuple = ()            # .cc files linked into every program of the lesson
    variants: tuple = ("plain",)
    mutants: str = ""            # checker/mutants/ module
    expect: dict = field(default_factory=dict)
    points: dict = field(default_factory=dict)   # make grade: {check id: points}; others 1
    limits: dict = field(default_factory=dict)   # the sandbox's limits (harness/sandbox.py)

    @property
    def name(self) -> str:
        return f"{self.number}-{self.slug}"

    @property
    def available(self) -> bool:
        return self.status == "available"

    @property
    def checks_module(self) -> str:
        return f"checker.checks.test_{self.name.replace('-', '_')}"

    @property
    def heading(self) -> str:
        return f"lesson {self.number} · {self.slug}: {self.title}"


def _lesson(entry: dict, where: str) -> Lesson:
    known = set(Lesson.__dataclass_fields__)
    unknown = set(entry) - known
    if unknown:
        raise ManifestError(f"{where}: unknown field(s) {', '.join(sorted(unknown))}")
    for required in ("number", "slug", "title", "status"):
        if not isinstance(entry.get(required), str) or not entry[required]:
            raise ManifestError(f"{where}: `{required}` must be a non-empty string")
    if not re.fullmatch(r"\d\d", entry["number"]):
        raise ManifestError(f"{where}: number {entry['number']!r} must be two digits, e.g. \"07\"")
    if not re.fullmatch(r"[a-z0-9]+(-[a-z0-9]+)*", entry["slug"]):
        raise ManifestError(f"{where}: slug {entry['slug']!r} must be lower-case words joined by -")
    if entry["status"] not in STATUSES:
        raise ManifestError(f"{where}: status must be one of {', '.join(STATUSES)}")
    values = dict(entry)
    for name in ("programs", "parts", "variants"):
        if name in values:
            values[name] = tuple(values[name])
    return Lesson(**values)


def load(path: pathlib.Path = MANIFEST) -> list[Lesson]:
    try:
        data = tomllib.loads(path.read_text())
    except (OSError, tomllib.TOMLDecodeError) as e:
        raise ManifestError(f"{path}: {e}") from None
    lessons = [_lesson(entry, f"{path.name}, lesson #{i + 1}")
               for i, entry in enumerate(data.get("lesson", []))]
    numbers = [lesson.number for lesson in lessons]
    if numbers != sorted(set(numbers)):
        raise ManifestError(f"{path.name}: lesson numbers must be unique and in order: {numbers}")
    for lesson in lessons:
        if lesson.available and not lesson.programs:
            raise ManifestError(f"{path.name}: lesson {lesson.name} is available but lists no programs")
    return lessons


_cache: list[Lesson] | None = None


def lessons() -> list[Lesson]:
    global _cache
    if _cache is None:
        _cache = load()
    return _cache


def available() -> list[Lesson]:
    return [lesson for lesson in lessons() if lesson.available]


def find(key: str) -> Lesson | None:
    """A lesson by number ("07", "7") or by name ("07-weensydb-5"); None if there is none."""
    key = key.strip()
    for lesson in lessons():
        if key == lesson.name or (key.isdigit() and int(key) == int(lesson.number)):
            return lesson
    return None


# ---- the Makefile's view --------------------------------------------------------

def make_vars() -> str:
    lines = ["# Written by `python3 -m checker.manifest make-vars` from course.toml: do not edit.",
             "LESSONS := " + " ".join(lesson.name for lesson in available())]
    for lesson in available():
        lines.append(f"PROGRAMS_{lesson.name} := {' '.join(lesson.programs)}")
        lines.append(f"PARTS_{lesson.name} := {' '.join(lesson.parts)}")
    return "\n".join(lines) + "\n"


# ---- the lesson tables ------------------------------------------------------------

def _row(cells) -> str:
    return "| " + " | ".join(cells) + " |"


def readme_table() -> str:
    rows = ["| | lesson | you build | the checker proves |", "|---|---|---|---|"]
    rows += [_row((lesson.number, lesson.slug, lesson.build, lesson.proves)) for lesson in available()]
    planned = [lesson for lesson in lessons() if not lesson.available]
    text = "\n".join(rows)
    if planned:
        text += ("\n\nPlanned: " + ", ".join(f"{lesson.number} {lesson.slug}" for lesson in planned)
                 + " (see `docs/course.md`).")
    return text


def course_table() -> str:
    rows = ["| NN | name | program and idea | status |", "|---|---|---|---|"]
    rows += [_row((lesson.number, lesson.slug, lesson.build, lesson.status)) for lesson in lessons()]
    return "\n".join(rows)


TABLES = {"README.md": readme_table, "docs/course.md": course_table}
BEGIN = "<!-- BEGIN lessons: written by `make tables` from course.toml, do not edit by hand -->"
END = "<!-- END lessons -->"


def with_table(text: str, table: str, where: str) -> str:
    start, end = text.find(BEGIN), text.find(END)
    if start < 0 or end < start:
        raise ManifestError(f"{where}: the markers for the lesson table are missing:\n{BEGIN}\n{END}")
    return text[:start] + BEGIN + "\n" + table + "\n" + text[end:]


def tables(root: pathlib.Path = ROOT, write: bool = False) -> list[str]:
    """Rewrites (write) or compares the generated tables; returns the files that differ."""
    stale = []
    for name, make_table in TABLES.items():
        path = root / name
        text = path.read_text()
        new = with_table(text, make_table(), name)
        if new != text:
            stale.append(name)
            if write:
                path.write_text(new)
    return stale


def main() -> int:
    parser = argparse.ArgumentParser(prog="python3 -m checker.manifest", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("what", choices=["make-vars", "names", "help", "tables"])
    parser.add_argument("--write", action="store_true", help="tables: rewrite them")
    parser.add_argument("--check", action="store_true", help="tables: fail if they are stale")
    args = parser.parse_args()
    try:
        if args.what == "make-vars":
            sys.stdout.write(make_vars())
        elif args.what == "names":
            print("\n".join(lesson.name for lesson in available()))
        elif args.what == "help":
            print("Lessons (course.toml):")
            for lesson in lessons():
                state = "" if lesson.available else "   (planned)"
                print(f"  {lesson.number}  {lesson.slug:<20} {lesson.title}{state}")
        else:
            stale = tables(write=args.write)
            if args.write:
                print(f"[tables] rewrote {', '.join(stale)}" if stale else "[tables] up to date")
            elif stale:
                print(f"[tables] ✗ out of date with course.toml: {', '.join(stale)} (run `make tables`)",
                      file=sys.stderr)
                return 1
            else:
                print("[tables] ✓ README.md and docs/course.md list what course.toml lists")
    except ManifestError as e:
        print(f"[course.toml] {e}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
