"""Known-bad programs (mutants) that prove each check can fail.

A mutant is the reference solution with a few exact text replacements: the
smallest change that brings back one classic bug. The self-tests build each
mutant, run the checks named in `caught_by` on it, and assert that each of
them fails with a message containing the given words. A replacement that no
longer matches the solution is an error, so mutants cannot silently rot.
"""
import pathlib
import shutil
from dataclasses import dataclass, field

ROOT = pathlib.Path(__file__).resolve().parents[2]


@dataclass
class Mutant:
    name: str
    file: str
    replacements: list            # [(old text, new text)], each old text found exactly once
    caught_by: dict               # {check id: words its failure message must contain}
    bug: str = ""                 # what the mutant gets wrong, in words
    lesson: str = field(default="")


def _registry() -> dict[str, list[Mutant]]:
    from . import lesson_01, lesson_02
    mutants = {}
    for module in (lesson_01, lesson_02):
        for m in module.MUTANTS:
            m.lesson = module.LESSON
        mutants[module.LESSON] = module.MUTANTS
    return mutants


def all_mutants() -> list[Mutant]:
    return [m for ms in _registry().values() for m in ms]


def find(lesson: str, name: str) -> Mutant:
    for m in _registry().get(lesson, []):
        if m.name == name:
            return m
    raise SystemExit(f"no mutant {name!r} for lesson {lesson}")


def prepare(lesson: str, name: str) -> str:
    """Writes the mutant's sources to build/src/mutants/NAME/LESSON/; returns the source root."""
    mutant = find(lesson, name)
    src_root = pathlib.Path("build/src/mutants") / name
    out = ROOT / src_root / lesson
    shutil.rmtree(out, ignore_errors=True)
    shutil.copytree(ROOT / "solutions" / lesson, out)
    path = out / mutant.file
    text = path.read_text()
    for old, new in mutant.replacements:
        count = text.count(old)
        if count != 1:
            raise SystemExit(f"mutant {name}: the text to replace occurs {count} times in "
                             f"solutions/{lesson}/{mutant.file} (want exactly once):\n{old}")
        text = text.replace(old, new)
    path.write_text(text)
    return str(src_root)
