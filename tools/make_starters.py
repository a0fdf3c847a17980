#!/usr/bin/env python3
"""Make the students' starter code (lessons/) from the reference solutions.

solutions/NN-name/ is the one source of truth. In its files, a marked region

        // BEGIN TODO 2: what the student must do, in words
        // (the instruction may go on over several comment lines)
        //| starter line, as the student first sees it
        solution lines ...
        // END TODO 2

becomes, in lessons/NN-name/,

        // TODO 2: what the student must do, in words
        // (the instruction may go on over several comment lines)
        starter line, as the student first sees it

Files without regions are copied as they are.

  python3 -m tools.make_starters            write lessons/ (never over a student's edits)
  python3 -m tools.make_starters --force    write lessons/, overwriting edits
  python3 -m tools.make_starters --check    exit 1 if lessons/ differs from what would be written
  python3 -m tools.make_starters --out DIR  write the starters under DIR instead (for the checker)
"""
import argparse
import difflib
import pathlib
import re
import subprocess
import sys

from checker import manifest

ROOT = pathlib.Path(__file__).resolve().parent.parent
BEGIN = re.compile(r"^(\s*)// BEGIN TODO(.*)$")
END = re.compile(r"^\s*// END TODO")
STARTER = re.compile(r"^(\s*)//\|(?: (.*))?$")
COMMENT = re.compile(r"^\s*//(?![|])")


class MarkerError(Exception):
    pass


def starter_text(source: str, name: str) -> str:
    """Turns one solution file into its starter."""
    out, lines, i = [], source.splitlines(keepends=True), 0
    while i < len(lines):
        begin = BEGIN.match(lines[i])
        if not begin:
            if END.match(lines[i]) or STARTER.match(lines[i]):
                raise MarkerError(f"{name}:{i + 1}: marker outside a BEGIN TODO region")
            out.append(lines[i])
            i += 1
            continue
        indent, title = begin.group(1), begin.group(2)
        out.append(f"{indent}// TODO{title}\n")
        i += 1
        # The instruction: comment lines right after BEGIN.
        while i < len(lines) and COMMENT.match(lines[i]) and not END.match(lines[i]):
            out.append(lines[i])
            i += 1
        # The rest of the region: keep starter lines, drop the solution.
        while i < len(lines) and not END.match(lines[i]):
            if BEGIN.match(lines[i]):
                raise MarkerError(f"{name}:{i + 1}: BEGIN TODO inside another region")
            starter = STARTER.match(lines[i])
            if starter:
                out.append(f"{starter.group(1)}{starter.group(2) or ''}".rstrip() + "\n")
            i += 1
        if i == len(lines):
            raise MarkerError(f"{name}: BEGIN TODO{title} has no END TODO")
        i += 1  # skip END
    return "".join(out)


def lesson_dirs():
    """solutions/NN-slug/ of every available lesson in course.toml."""
    dirs = [ROOT / "solutions" / lesson.name for lesson in manifest.available()]
    missing = [str(d.relative_to(ROOT)) for d in dirs if not d.is_dir()]
    if missing:
        sys.exit(f"[starters] course.toml lists lessons without a solution: {', '.join(missing)}")
    return dirs


def expected_files():
    """{path relative to lessons/: starter text} for every solution file."""
    files = {}
    for lesson in lesson_dirs():
        for src in sorted(lesson.rglob("*")):
            if src.is_file():
                rel = src.relative_to(ROOT / "solutions")
                text = src.read_text()
                files[rel] = starter_text(text, str(rel)) if src.suffix in (".cc", ".h") else text
    return files


def student_edited(path: pathlib.Path) -> bool:
    """True if git says the file has uncommitted changes (or git cannot tell)."""
    result = subprocess.run(["git", "-C", str(ROOT), "diff", "--quiet", "HEAD", "--", str(path)],
                            capture_output=True)
    return result.returncode != 0


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true")
    parser.add_argument("--force", action="store_true")
    parser.add_argument("--out", type=pathlib.Path)
    args = parser.parse_args()
    try:
        files = expected_files()
    except MarkerError as error:
        sys.exit(f"make_starters: {error}")

    target = args.out or ROOT / "lessons"
    if args.check:
        drift = []
        for rel, text in files.items():
            path = target / rel
            have = path.read_text() if path.exists() else ""
            if have != text:
                drift.append(rel)
                sys.stdout.writelines(difflib.unified_diff(
                    have.splitlines(True), text.splitlines(True),
                    f"lessons/{rel} (in the repo)", f"lessons/{rel} (made from solutions/)"))
        lesson_names = {rel.parts[0] for rel in files}
        for extra in sorted(target.glob("[0-9][0-9]-*/*")):
            rel = extra.relative_to(target)
            if extra.is_file() and rel not in files and rel.parts[0] in lesson_names:
                # A file only in lessons/ (a README, hints) is fine if it is not code.
                if extra.suffix in (".cc", ".h"):
                    drift.append(rel)
                    print(f"lessons/{rel}: code file with no counterpart in solutions/")
        if drift:
            print(f"[drift] ✗ {len(drift)} file(s) in lessons/ differ from the starters "
                  "made from solutions/: run `make starters`, review, commit")
            sys.exit(1)
        print(f"[drift] ✓ lessons/ is exactly what solutions/ makes ({len(files)} files)")
        return

    skipped = []
    for rel, text in files.items():
        path = target / rel
        if path.exists() and path.read_text() == text:
            continue
        if path.exists() and not args.force and not args.out and student_edited(path):
            skipped.append(rel)
            continue
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
        print(f"wrote {path.relative_to(ROOT) if path.is_relative_to(ROOT) else path}")
    for rel in skipped:
        print(f"kept lessons/{rel}: it has your edits (make starters FORCE=1 overwrites them)")


if __name__ == "__main__":
    main()
