"""A copy of the course in a temporary folder, for self-tests that change or own it."""
import pathlib
import shutil
import subprocess

from checker.harness import T

ROOT = pathlib.Path(__file__).resolve().parents[2]


# Built once by `make test` before the self-tests, and the same in every copy: the copy's
# make finds them newer than their sources (copied with their times too) and compiles
# only the lesson programs. (Compiling them again took most of a grading self-test.)
PREBUILT = ["build/common", "build/tools"]


def copy_course(destination: pathlib.Path) -> pathlib.Path:
    """Copies the repository's files as in the working tree (tracked, and new ones not
    ignored), modes and times kept, to destination, with the shared library and the course's
    tools already built; returns destination."""
    listed = subprocess.run(["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
                            cwd=ROOT, capture_output=True, check=True, timeout=T(60)).stdout
    for name in filter(None, listed.decode().split("\0")):
        source = ROOT / name
        if source.is_file():
            (destination / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, destination / name)
    for built in PREBUILT:
        if (ROOT / built).is_dir():
            shutil.copytree(ROOT / built, destination / built, symlinks=True, dirs_exist_ok=True)
    return destination
