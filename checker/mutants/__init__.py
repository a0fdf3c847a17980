"""Known-bad programs (mutants) that prove each check can fail.

A mutant is the reference solution with a few exact text replacements: the
smallest change that brings back one classic bug. A mutant marked `student`
is more than that: a plausible wrong program of the kind a student writes
(a loop, a function or a lock rewritten the wrong way), not a one-token change. The self-tests build each
mutant, run the checks named in `caught_by` on it, and assert that each of
them fails with a message containing the given words. A replacement that no
longer matches the solution is an error, so mutants cannot silently rot.

One module per family of lessons, named in course.toml (`mutants = "eventloop"`);
each defines mutants_for(lesson) -> [Mutant].
"""
import importlib
import pathlib
import shutil
from dataclasses import dataclass, field

from checker import manifest

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
    student: bool = False         # written as a student would write it wrong


def replaced(text: str, replacements, where: str) -> str:
    for old, new in replacements:
        count = text.count(old)
        if count != 1:
            raise SystemExit(f"{where}: the text to replace occurs {count} times "
                             f"(want exactly once):\n{old}")
        text = text.replace(old, new)
    return text


def _registry() -> dict[str, list[Mutant]]:
    """{lesson name: its mutants}, for every available lesson that names a mutants module
    in course.toml (`mutants = "weensydb"` means checker/mutants/weensydb.py)."""
    by_lesson = {}
    for lesson in manifest.available():
        if not lesson.mutants:
            continue
        module = importlib.import_module(f"{__name__}.{lesson.mutants}")
        hostile = importlib.import_module(f"{__name__}.hostile")   # attacks on the checker itself
        mutants = module.mutants_for(lesson.name) + hostile.mutants_for(lesson.name)
        for m in mutants:
            m.lesson = lesson.name
        by_lesson[lesson.name] = mutants
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
