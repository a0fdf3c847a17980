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
    common: dict = field(default_factory=dict)   # {common file: replacements}: a
                                  # mutated copy is compiled into the program instead


def replaced(text: str, replacements, where: str) -> str:
    for old, new in replacements:
        count = text.count(old)
        if count != 1:
            raise SystemExit(f"{where}: the text to replace occurs {count} times "
                             f"(want exactly once):\n{old}")
        text = text.replace(old, new)
    return text


def _registry() -> dict[str, list[Mutant]]:
    from . import eventloop, lesson_01, lesson_02, lesson_11, lesson_15, weensydb
    by_lesson = {module.LESSON: module.MUTANTS for module in (lesson_01, lesson_02, lesson_11, lesson_15)}
    by_lesson.update(weensydb.mutants_by_lesson())
    by_lesson.update(eventloop.mutants_by_lesson())
    for lesson, mutants in by_lesson.items():
        for m in mutants:
            m.lesson = lesson
    return by_lesson


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
    text = replaced(path.read_text(), mutant.replacements, f"mutant {name}: solutions/{lesson}/{mutant.file}")
    # A mutated copy of a shared file is #included by the program: its definitions
    # then win over libcommon.a's, whose member the linker no longer needs.
    for common_file, replacements in mutant.common.items():
        source = (ROOT / "common" / common_file).read_text()
        (out / f"mutated_{common_file}").write_text(
            replaced(source, replacements, f"mutant {name}: common/{common_file}"))
        text += f'\n#include "mutated_{common_file}"   // mutant {name}\n'
    path.write_text(text)
    return str(src_root)
