#!/usr/bin/env python3
"""Shows the next hint for a lesson (make hint-NN).

    hint.py NN       the next hint you have not seen yet (and counts it as seen)
    hint.py NN K     hint K again, without changing the count

Hints live in lessons/NN-name/HINTS.md (or solutions/NN-name/HINTS.md), one
section per hint, each starting with a line `## Hint N: title`. How many you
have seen is kept in .progress.json, under lessons -> NN-name -> hints_shown.
"""
import pathlib
import re
import sys

ROOT = pathlib.Path(__file__).resolve().parent.parent
from checker import manifest, progress_state

HINT = re.compile(r"^##\s+Hint\s+(\d+)\s*[:.]?\s*(.*?)(?:\s+#+)?\s*$", re.IGNORECASE)
HEADING = re.compile(r"^#{1,2}\s")  # a new top- or section-level heading ends a hint
FENCE = re.compile(r"^\s*(```|~~~)")


class HintError(Exception):
    pass


def lessons() -> list[str]:
    """Every available lesson's directory name, e.g. 01-raw-client (course.toml lists them)."""
    return [lesson.name for lesson in manifest.available()]


def lesson_name(number: str) -> str:
    """The lesson's directory name, from its number (7, 07) or its name (07-weensydb-5)."""
    known = ", ".join(n[:2] for n in lessons()) or "none yet"
    lesson = manifest.find(number or "")
    if lesson is None or not lesson.available:
        raise HintError(f"there is no lesson {number!r}: give its number, e.g. make hint-01 "
                        f"(lessons: {known})")
    return lesson.name


def hints_file(lesson: str) -> pathlib.Path | None:
    for top in ("lessons", "solutions"):
        path = ROOT / top / lesson / "HINTS.md"
        if path.is_file():
            return path
    return None


def parse_hints(text: str) -> list[tuple[str, str]]:
    """[(title, body), ...] in the order of the file."""
    hints, current, in_fence = [], None, False
    for line in text.splitlines():
        if FENCE.match(line):
            in_fence = not in_fence
        elif not in_fence:
            match = HINT.match(line)
            if match:
                current = (match.group(2) or f"hint {match.group(1)}", [])
                hints.append(current)
                continue
            if HEADING.match(line):
                current = None
                continue
        if current is not None:
            current[1].append(line)
    return [(title, "\n".join(body).strip("\n")) for title, body in hints]


def read_hints(lesson: str) -> tuple[pathlib.Path, list[tuple[str, str]]]:
    path = hints_file(lesson)
    if path is None:
        raise HintError(f"lesson {lesson[:2]} has no hints yet "
                        f"(no lessons/{lesson}/HINTS.md); its README is the place to look")
    try:
        hints = parse_hints(path.read_text(encoding="utf-8", errors="replace"))
    except OSError as e:
        raise HintError(f"cannot read {rel(path)}: {e.strerror}")
    if not hints:
        raise HintError(f"{rel(path)} has no `## Hint N: title` sections")
    return path, hints


def rel(path: pathlib.Path) -> str:
    try:
        return str(path.relative_to(ROOT))
    except ValueError:
        return str(path)


def readme(lesson: str) -> str:
    for top in ("lessons", "solutions"):
        path = ROOT / top / lesson / "README.md"
        if path.is_file():
            return rel(path)
    return f"lessons/{lesson}/README.md"


def show(lesson: str, hints, k: int):
    title, body = hints[k - 1]
    print(f"[hint] lesson {lesson[:2]} · hint {k} of {len(hints)}: {title}")
    if body:
        print()
        print(body)
        print()


def main(argv: list[str]) -> int:
    if hasattr(sys.stdout, "reconfigure"):
        sys.stdout.reconfigure(errors="replace")
    if not 1 <= len(argv) <= 2:
        raise HintError("usage: hint.py NN [K]   (make hint-NN, or make hint-NN N=K for hint K)")
    lesson = lesson_name(argv[0])
    path, hints = read_hints(lesson)
    total, number = len(hints), lesson[:2]
    state = progress_state.load(ROOT)
    if not isinstance(state, dict):
        state = {}
    if not isinstance(state.get("lessons"), dict):
        state["lessons"] = {}
    entry = state["lessons"].setdefault(lesson, {})
    try:
        shown = min(max(int(entry.get("hints_shown", 0)), 0), total)
    except (TypeError, ValueError):
        shown = 0
    all_hints = f"all hints: {rel(path)}"

    if len(argv) == 2:
        if not re.fullmatch(r"\d+", argv[1]) or not 1 <= int(argv[1]) <= total:
            raise HintError(f"lesson {number} has hints 1 to {total}; there is no hint {argv[1]}")
        show(lesson, hints, int(argv[1]))
        if shown < total:
            print(f"(next: make hint-{number} · {all_hints})")
        else:
            print(f"(you have seen all {total} hints · {all_hints} · README: {readme(lesson)})")
        return 0

    if shown >= total:
        print(f"[hint] lesson {number} · you have seen all {total} hints; here is the last one again.")
        show(lesson, hints, total)
        print(f"(no more hints: reread {readme(lesson)} · {all_hints})")
        return 0

    shown += 1
    entry["hints_shown"] = shown
    try:
        progress_state.save(ROOT, state)
    except OSError as e:
        print(f"[hint] (could not record it in .progress.json: {e.strerror})", file=sys.stderr)
    show(lesson, hints, shown)
    if shown < total:
        print(f"(next: make hint-{number} · {all_hints})")
    else:
        print(f"(that was the last hint · {all_hints} · README: {readme(lesson)})")
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main(sys.argv[1:]))
    except HintError as e:
        sys.exit(f"[hint] {e}")
    except BrokenPipeError:
        sys.stdout = None
        sys.exit(0)
