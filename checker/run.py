#!/usr/bin/env python3
"""Runs a lesson's checks (or the checker's self-tests) with pytest.

    run.py lessons NN          your code in lessons/NN-*/
    run.py solutions NN        the reference in solutions/NN-*/
    run.py solutions all       every lesson's reference, several at once
    run.py starters NN         the untouched starter, made afresh from solutions/
    run.py mutant NN NAME      a known-bad variant (checker/mutants/)
    run.py dir NN SRC_ROOT     the sources in SRC_ROOT/NN-*/ (under build/src/), e.g. a broken program
    run.py selftest            the checker's own tests
  options: --only CHECK_ID (repeatable), --json FILE, -k EXPR (selftest: pytest's -k)

Everything runs in a private network namespace where the system allows it
(as root: `unshare -n`; otherwise a user+network namespace, `unshare -rn`):
its loopback interface carries only the checks' own traffic, and packets can
be captured without special rights. If neither works the checks run on the
machine's own loopback, and the capture checks say why they cannot run.
"""
import argparse
import os
import pathlib
import shutil
import signal
import subprocess
import sys
import tempfile

CHECKER = pathlib.Path(__file__).resolve().parent
ROOT = CHECKER.parent
# The one entry point run as a script: everything else imports the repository's packages
# (checker, tools) from the top of the repository.
sys.path.insert(0, str(ROOT))

from checker.harness.timeouts import T  # noqa: E402  (after the path is set)


def lesson_name(number: str) -> str:
    """The lesson's directory name (07 -> 07-weensydb-5), from course.toml; exits with a
    clear message for anything else."""
    from checker import manifest
    known = ", ".join(lesson.number for lesson in manifest.available())
    lesson = manifest.find(number or "")
    if lesson is None:
        sys.exit(f"[checker] there is no lesson {number!r}: give its number, e.g. make lesson-01 "
                 f"(lessons: {known})")
    if not lesson.available:
        sys.exit(f"[checker] lesson {lesson.number} ({lesson.slug}) is planned and not written yet "
                 f"(lessons: {known})")
    return lesson.name


def test_module(lesson: str) -> pathlib.Path:
    return CHECKER / "checks" / f"test_{lesson.replace('-', '_')}.py"


def enter_network_namespace():
    """Re-executes this script inside a fresh network namespace, if possible."""
    if os.environ.get("NETCOURSE_NETNS") or os.environ.get("NETCOURSE_NO_NETNS"):
        return
    if shutil.which("unshare") is None or shutil.which("ip") is None:
        os.environ["NETCOURSE_NETNS"] = "none: unshare or ip (util-linux, iproute2) missing"
        return
    unshare = ["unshare", "-n"] if os.geteuid() == 0 else ["unshare", "-r", "-n"]
    probe = subprocess.run(unshare + ["ip", "link", "set", "lo", "up"], capture_output=True, timeout=T(30))
    if probe.returncode != 0:
        why = probe.stderr.decode(errors="replace").strip().splitlines()
        os.environ["NETCOURSE_NETNS"] = "none: " + (why[-1] if why else "unshare failed")
        return
    os.environ["NETCOURSE_NETNS"] = "1"
    # orig_argv keeps "-m module" for the tools that are run as modules.
    os.execvp("unshare", unshare + [sys.executable, *sys.orig_argv[1:]])


def bring_up_loopback():
    if os.environ.get("NETCOURSE_NETNS") == "1":
        subprocess.run(["ip", "link", "set", "lo", "up"], check=True, timeout=T(30))


def stop_on_sigterm():
    """SIGTERM (a CI job's timeout, a closed terminal) ends the run the way Ctrl-C does:
    every process the checker started is killed and every temporary directory removed."""
    def interrupt(signum, frame):
        raise KeyboardInterrupt
    signal.signal(signal.SIGTERM, interrupt)


def pytest_args(args) -> list[str]:
    common = ["-q", "--no-header", "--tb=no", "-rN", "-p", "no:cacheprovider",
              "-p", "checker.harness.plugin", "-c", str(CHECKER / "pytest.ini"), "--rootdir", str(CHECKER)]
    if args.kind == "selftest":
        selected = ["-k", args.k] if args.k else []
        # CI shows only the end of the output: name each failure again there, with its line.
        at_the_end = ["-rfE", "--tb=line"]
        slowest = ["--durations=12", "--durations-min=20"]   # where the 15-minute budget goes
        return common + selected + slowest + at_the_end + [str(CHECKER / "selftest")]
    lesson = lesson_name(args.number)
    roots = {
        "lessons": ("lessons", "build/lessons", "your code"),
        "solutions": ("solutions", "build/solutions", "the solution"),
        "starters": ("build/src/starters", "build/starters", "the untouched starter"),
    }
    if args.kind == "mutant":
        from checker.mutants import prepare
        src_root = prepare(lesson, args.mutant)
        roots["mutant"] = (src_root, src_root.replace("build/src/", "build/"), f"mutant {args.mutant}")
    if args.kind == "dir":
        roots["dir"] = (args.mutant, args.mutant.replace("build/src/", "build/"), f"the program in {args.mutant}")
    if args.kind == "starters":
        subprocess.run([sys.executable, "-m", "tools.make_starters", "--out",
                        str(ROOT / "build" / "src" / "starters")], check=True, stdout=subprocess.DEVNULL)
    src, bins, label = roots[args.kind]
    extra = [f"--nc-only={c}" for c in args.only]
    if args.json:
        extra.append(f"--nc-json={args.json}")
    elif args.kind == "lessons":
        extra.append(f"--nc-json={ROOT / 'build' / 'last-run.json'}")
    # (An interrupt dropped inside an at-fork handler is pytest's "unraisable" warning, a
    # traceback under the student's report; the plugin stops the run at the next check.)
    quiet = ["-W", "ignore::pytest.PytestUnraisableExceptionWarning"]
    return common + quiet + [str(test_module(lesson)), f"--nc-lesson={lesson}", f"--nc-src-root={src}",
                     f"--nc-bin-root={bins}", f"--nc-label={label}", *extra]


TEMP_PREFIX = "netcourse-checks-"


def remove_stale_temporary_directories():
    """A run removes its temporary directory when it ends, on a failure and on Ctrl-C or
    SIGTERM too; one killed outright (SIGKILL) cannot. Its successor removes it: the
    directory's name holds the run's pid, and that process is gone."""
    for old in pathlib.Path(tempfile.gettempdir()).glob(f"{TEMP_PREFIX}*-*"):
        pid = old.name.removeprefix(TEMP_PREFIX).split("-")[0]
        if pid.isdigit() and not os.path.exists(f"/proc/{pid}"):
            shutil.rmtree(old, ignore_errors=True)


def main():
    parser = argparse.ArgumentParser(description="run netcourse checks")
    parser.add_argument("kind", choices=["lessons", "solutions", "starters", "mutant", "dir", "selftest"])
    parser.add_argument("number", nargs="?")
    parser.add_argument("mutant", nargs="?")
    parser.add_argument("--only", action="append", default=[])
    parser.add_argument("--json")
    parser.add_argument("-k", help="selftest only: run the self-tests whose names match (pytest -k)")
    args = parser.parse_args()
    if args.kind == "solutions" and args.number == "all":
        from checker import every_lesson
        sys.exit(every_lesson.main("solutions"))
    if args.kind != "selftest":
        lesson_name(args.number)   # exits with the list of lessons if there is no such lesson
    try:
        import pytest  # noqa: F401
    except ImportError:
        sys.exit(f"[checker] pytest is missing for {sys.executable}: run `make deps` "
                 "(Debian package python3-pytest)")
    enter_network_namespace()
    bring_up_loopback()
    stop_on_sigterm()
    os.chdir(ROOT)
    (ROOT / "build").mkdir(exist_ok=True)
    env_path = os.environ.get("PYTHONPATH", "")
    os.environ["PYTHONPATH"] = str(ROOT) + (os.pathsep + env_path if env_path else "")
    import pytest
    # pytest's own choice, /tmp/pytest-of-USER, is "pytest-of-root" inside the user namespace an
    # ordinary user's run enters, and fails when the real root made it first: a fresh one.
    # Every temporary file of the run goes in one directory of its own, removed at the end.
    remove_stale_temporary_directories()
    run_temp = tempfile.mkdtemp(prefix=f"{TEMP_PREFIX}{os.getpid()}-")
    os.chmod(run_temp, 0o711)   # a sandboxed program may pass through to the logs it writes
    tempfile.tempdir = run_temp
    try:
        code = pytest.main(pytest_args(args) + [f"--basetemp={run_temp}/pytest"])
    finally:
        tempfile.tempdir = None
        shutil.rmtree(run_temp, ignore_errors=True)
    if args.kind == "lessons" and not args.only:   # progress counts only a full run
        from checker.progress_state import record_run
        record_run(ROOT, lesson_name(args.number))
    if code == pytest.ExitCode.INTERRUPTED:
        sys.exit(130)   # as a shell reports a program ended by Ctrl-C (128 + SIGINT)
    sys.exit(int(code))


if __name__ == "__main__":
    main()
