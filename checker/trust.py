"""Is this the course's own checker? A hash list of every file that grades.

    python3 -m checker.trust check     exit 1, naming the files, if any differs
    python3 -m checker.trust write     rewrite grading/trusted.sha256 (after changing the checker)

`make grade` refuses to grade with a checker that differs from the list, and
`make check-drift` (part of `make test`) fails when the list is stale. A student
who edits both a check and the list passes this test; that is why the CI
templates in grading/ take the checker from the course's repository, not from
the student's (docs/instructor.md).
"""
import hashlib
import pathlib
import sys

ROOT = pathlib.Path(__file__).resolve().parent.parent
LIST = ROOT / "grading" / "trusted.sha256"
# What decides a grade: the checks and their harness, the code every program links
# with, the course's tools and programs, the manifest and the build.
TREES = ("checker", "common", "tools", ".ci")
FILES = ("course.toml", "Makefile")
SKIPPED = ("__pycache__", ".pytest_cache")
NOT_GRADING = ("checker/selftest/",)    # the checker's own tests: never run by make grade


def graded_files(root: pathlib.Path = ROOT) -> list[str]:
    found = [name for name in FILES if (root / name).exists()]
    for tree in TREES:
        for path in sorted((root / tree).rglob("*")):
            relative = path.relative_to(root)
            if path.is_file() and not any(part in SKIPPED for part in relative.parts) \
                    and path.suffix != ".pyc" and not str(relative).startswith(NOT_GRADING):
                found.append(str(relative))
    return sorted(found)


def digest(path: pathlib.Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def hash_list(root: pathlib.Path = ROOT) -> str:
    return "".join(f"{digest(root / name)}  {name}\n" for name in graded_files(root))


def differences(root: pathlib.Path = ROOT) -> list[str]:
    """One line per file that differs from the list: changed, added or missing."""
    try:
        listed = dict(reversed(line.split("  ", 1)) for line in (root / LIST.relative_to(ROOT))
                      .read_text().splitlines() if line)
    except (OSError, ValueError):
        return [f"{LIST.relative_to(ROOT)}: missing or unreadable"]
    present = graded_files(root)
    problems = [f"{name}: modified" for name in present
                if name in listed and digest(root / name) != listed[name]]
    problems += [f"{name}: not part of the course's checker" for name in present if name not in listed]
    problems += [f"{name}: missing" for name in listed if name not in present]
    return problems


def main() -> int:
    what = sys.argv[1] if len(sys.argv) > 1 else "check"
    if what == "write":
        LIST.parent.mkdir(exist_ok=True)
        LIST.write_text(hash_list())
        print(f"[trust] wrote {LIST.relative_to(ROOT)}: {len(graded_files())} files")
        return 0
    problems = differences()
    for line in problems[:20]:
        print(f"[trust] {line}", file=sys.stderr)
    if len(problems) > 20:
        print(f"[trust] … and {len(problems) - 20} more", file=sys.stderr)
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
