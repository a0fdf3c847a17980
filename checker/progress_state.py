"""The student's progress, kept in .progress.json (git-ignored) at the top of the repo.

{"lessons": {"01-raw-client": {"passed": 9, "total": 11, "complete": false,
                               "when": "2026-11-23 10:41", "hints_shown": 1}}}
"""
import json
import pathlib
import time


def load(root: pathlib.Path) -> dict:
    path = root / ".progress.json"
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return {"lessons": {}}


def save(root: pathlib.Path, state: dict):
    (root / ".progress.json").write_text(json.dumps(state, indent=1, sort_keys=True) + "\n")


def record_run(root: pathlib.Path, lesson: str):
    """Copies the last `make lesson-NN` results (build/last-run.json) into the progress file."""
    try:
        results = json.loads((root / "build" / "last-run.json").read_text())
    except (OSError, ValueError):
        return
    if results.get("interrupted") or results.get("lesson") != lesson:
        return
    checks = results["checks"]
    passed = sum(c["outcome"] == "passed" for c in checks)
    failed = sum(c["outcome"] in ("failed", "waiting") for c in checks)
    state = load(root)
    entry = state["lessons"].setdefault(lesson, {})
    entry.update(passed=passed, total=len(checks), complete=failed == 0 and passed > 0,
                 when=time.strftime("%Y-%m-%d %H:%M"))
    save(root, state)
