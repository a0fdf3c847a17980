#!/usr/bin/env python3
"""Your state in every lesson (make progress), from .progress.json.

The lessons come from course.toml: available ones show their last
`make lesson-NN` result, planned ones show as planned.
"""
import pathlib
import sys

ROOT = pathlib.Path(__file__).resolve().parent.parent
from checker import manifest, progress_state

def hint_count(lesson: str) -> int | None:
    """How many hints the lesson has, or None if it has none (or they cannot be read)."""
    try:
        from tools import hint
        return len(hint.read_hints(lesson)[1])
    except Exception:
        return None


def as_int(value, default=0) -> int:
    try:
        return int(value)
    except (TypeError, ValueError):
        return default


def main() -> int:
    if hasattr(sys.stdout, "reconfigure"):
        sys.stdout.reconfigure(errors="replace")
    state = progress_state.load(ROOT)
    if not isinstance(state, dict):
        state = {}
    entries = state.get("lessons") if isinstance(state.get("lessons"), dict) else {}
    available = {lesson.number: lesson.name for lesson in manifest.available()}
    planned = {lesson.number: lesson.name for lesson in manifest.lessons() if not lesson.available}

    rows, next_step = [], None
    for number in sorted(set(available) | set(planned)):
        if number not in available:
            rows.append((planned[number], "planned", "", ""))
            continue
        lesson = available[number]
        entry = entries.get(lesson) if isinstance(entries.get(lesson), dict) else {}
        if "total" not in entry and "complete" not in entry:
            status = "not started"
        elif entry.get("complete"):
            status = "✓ complete"
        else:
            status = f"{as_int(entry.get('passed'))} of {as_int(entry.get('total'))} checks"
        when = str(entry.get("when") or "-")
        shown, total = as_int(entry.get("hints_shown")), hint_count(lesson)
        hints = f"{min(shown, total)} of {total}" if total else (str(shown) if shown else "-")
        rows.append((lesson, status, when, hints))
        if next_step is None and not entry.get("complete"):
            if (ROOT / "lessons" / lesson).is_dir():
                next_step = f"next: make lesson-{number}   (make watch-{number} re-checks on every save)"
            else:
                next_step = (f"next: make starters (lessons/{lesson}/ is missing), "
                             f"then make lesson-{number}")

    header = ("lesson", "state", "last run", "hints shown")
    widths = [max(len(r[i]) for r in rows + [header]) for i in range(len(header))]
    line = lambda cells: "  ".join(c.ljust(w) for c, w in zip(cells, widths)).rstrip()
    print(line(header))
    print(line(["-" * w for w in widths]))
    for row in rows:
        print(line(row))
    print()
    if next_step is None:
        if len(available) >= len(rows):
            print("every lesson is complete: well done")
        elif available:
            print(f"every available lesson is complete ({len(available)} of {len(rows)}); "
                  f"the rest are still being written")
        else:
            print("no lessons are available yet")
    else:
        print(next_step)
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except BrokenPipeError:  # e.g. make progress | head
        sys.stdout = None
        sys.exit(0)
