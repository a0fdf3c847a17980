"""A copy of the course in a temporary folder, for self-tests that change or own it."""
import pathlib
import shutil
import subprocess

from checker.harness import T

ROOT = pathlib.Path(__file__).resolve().parents[2]


def copy_course(destination: pathlib.Path) -> pathlib.Path:
    """Copies the repository's files as in the working tree (tracked, and new ones not
    ignored), modes kept, to destination; returns destination."""
    listed = subprocess.run(["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
                            cwd=ROOT, capture_output=True, check=True, timeout=T(60)).stdout
    for name in filter(None, listed.decode().split("\0")):
        source = ROOT / name
        if source.is_file():
            (destination / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, destination / name)
    return destination
