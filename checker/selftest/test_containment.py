"""Hostile programs meet the harness: each ends within its timeout, with bounded memory,
reported in words, and nothing of it keeps running.

The programs are small shell commands standing for student code that floods its
output, escapes its process group, or keeps its output open after it exits.
"""
import os
import pathlib
import resource
import subprocess
import sys
import time

import pytest

from checker.harness import T, note, procfs, procs, sandbox, start_server
from checker.selftest.course_copy import copy_course

ROOT = pathlib.Path(__file__).resolve().parents[2]


def still_running(mark: str) -> list[int]:
    return procs.marked(mark)


def run_marked(argv, timeout):
    """procs.run, also returning the mark its processes carried."""
    before = set(procs._live)
    seen = {}
    original = procs.spawn

    def spawn(*args, **kwargs):
        proc = original(*args, **kwargs)
        seen["mark"] = proc._nc_mark
        return proc
    procs.spawn = spawn
    try:
        result = procs.run(argv, timeout=timeout)
    finally:
        procs.spawn = original
    assert set(procs._live) == before
    return result, seen["mark"]


def test_a_flood_of_output_is_kept_bounded():
    """2 GB on stdout: read in one pass, the checker's memory stays small, the limit is named."""
    rss_before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    start = time.monotonic()
    result, _ = run_marked(["sh", "-c", "head -c 2G /dev/zero; echo done >&2"], timeout=T(120))
    seconds = time.monotonic() - start
    grown_mib = (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - rss_before) / 1024
    assert result.returncode == 0
    assert len(result.stdout) < procs.STDOUT_LIMIT + 2 * procs.TAIL
    assert grown_mib < 200, f"the checker grew by {grown_mib:.0f} MiB reading 2 GB"
    assert "printed more than 32 MiB on stdout (2,147,483,648 bytes in all)" in result.exit_description()
    assert b"done" in result.stderr
    assert seconds < 60


def test_a_double_fork_with_setsid_does_not_hold_the_checker():
    """The program exits; its grandchild, in a session of its own, keeps stdout open and sleeps."""
    start = time.monotonic()
    result, mark = run_marked(["sh", "-c", "setsid sh -c 'sleep 1000' & echo parent done"], timeout=T(30))
    assert time.monotonic() - start < procs.AFTER_EXIT + 5
    assert result.returncode == 0 and result.stdout == b"parent done\n"
    assert not still_running(mark), "the escaped grandchild is still running"


def test_a_timeout_kills_every_descendant():
    result, mark = run_marked(["sh", "-c", "for i in 1 2 3 4 5; do setsid sleep 1000 & done; sleep 1000"],
                              timeout=1)
    assert result.timed_out and "killed it with all its children" in result.exit_description()
    assert not still_running(mark)


def fake_server(tmp_path, script: str):
    """A "server": a shell script that ignores its -p option."""
    path = tmp_path / "server.sh"
    path.write_text("#!/bin/sh\n" + script + "\n")
    path.chmod(0o755)
    return path


def test_a_server_that_escapes_is_killed_with_it(tmp_path):
    """A "server" that announces its port, then forks a setsid child that holds its pipes."""
    script = "echo port 1; setsid sh -c 'sleep 1000' & exec sleep 1000"
    with start_server(fake_server(tmp_path, script)) as server:
        mark = server.proc._nc_mark
        assert still_running(mark)
    assert not still_running(mark)


def test_a_server_flooding_stderr_stays_bounded(tmp_path):
    script = "echo port 1; exec head -c 300M /dev/zero >&2"
    with start_server(fake_server(tmp_path, script)) as server:
        server.proc.wait(timeout=T(60))
        assert server.err.total == 300 << 20
        assert len(server.stderr()) < procs.STDERR_LIMIT + 2 * procs.TAIL


def test_input_is_fed_to_a_program_that_stops_reading():
    result, _ = run_marked(["sh", "-c", "head -c 10 >/dev/null; echo read"], timeout=T(30))
    assert result.stdout == b"read\n"
    big = procs.run(["sh", "-c", "head -c 10 >/dev/null; echo read"], timeout=T(30), input=b"x" * (8 << 20))
    assert big.returncode == 0 and big.stdout == b"read\n"


# ---- the sandbox (as root) ------------------------------------------------------

PROBES = ROOT / "build" / "mutants" / "sandbox-probes"


def probe(name: str, script: str) -> pathlib.Path:
    """A "program under test": a script where the checker looks for student programs."""
    PROBES.mkdir(parents=True, exist_ok=True)
    path = PROBES / name
    path.write_text(script)
    path.chmod(0o755)
    return path


needs_root = pytest.mark.skipif(not sandbox.active(), reason="the sandbox needs root (setpriv, prlimit)")


needs_jail = pytest.mark.skipif(not sandbox.jail.works(), reason="no namespaces here: jail says why")
WHOAMI = "#!/bin/sh\nid -u\necho \"pid:\t$$\"\ngrep -E '^(Uid|CapEff|CapBnd|NoNewPrivs|NSpid)' /proc/self/status\n"


def inside(text: str) -> dict[str, str]:
    """What the probe printed: {"id -u": …, "CapEff": …, …}."""
    lines = text.strip().splitlines()
    return {"id -u": lines[0], **dict(line.split(":\t", 1) for line in lines[1:])}


@needs_root
def test_student_code_is_never_root():
    result = procs.run([probe("whoami", WHOAMI)], timeout=T(10))
    seen = inside(result.stdout.decode())
    note("inside: " + "; ".join(f"{k} {v}" for k, v in seen.items()))
    assert seen["id -u"] == str(sandbox.SANDBOX_UID)
    assert seen["Uid"].split()[0] == str(sandbox.SANDBOX_UID)   # /proc: the machine's view
    assert seen["CapEff"] == "0000000000000000" and seen["CapBnd"] == "0000000000000000"
    assert seen["NoNewPrivs"] == "1"


@needs_jail
def test_student_code_runs_in_a_pid_namespace_of_its_own():
    """Its pid inside is 2 (the jail's init is 1): when the jail ends, so does all it started."""
    result = procs.run([probe("whoami", WHOAMI)], timeout=T(10))
    seen = inside(result.stdout.decode())
    levels = len(procfs.namespace_pids(os.getpid()))
    assert len(seen["NSpid"].split()) == levels + 1, seen["NSpid"]   # (grep's: one level deeper than ours)
    assert seen["pid"] == "2"
    assert seen["CapEff"] == "0000000000000000" and seen["CapBnd"] == "0000000000000000"
    assert seen["id -u"] != "0"


@needs_root
def test_a_fork_bomb_is_contained():
    start = time.monotonic()
    result = procs.run([probe("forkbomb", "#!/bin/sh\nbomb() { bomb | bomb & }\nbomb\nsleep 1000\n")], timeout=5)
    left = sandbox.sweep()
    assert time.monotonic() - start < 30
    assert not sandbox.processes(), "fork bomb processes survived the sweep"
    note(f"{result.exit_description()}; then: {'; '.join(left) or 'nothing left'}")


@needs_root
def test_a_huge_file_is_cut_and_removed():
    """Cut at the file limit; in the jail it was never in the real /tmp, and without
    the jail the sweep removes it."""
    result = procs.run([probe("bigfile", "#!/bin/sh\nhead -c 1G /dev/zero > /tmp/netcourse-probe-big\n")],
                       timeout=T(60))
    assert result.returncode != 0, result.exit_description()   # SIGXFSZ, or EFBIG reported
    left = sandbox.sweep()
    if not sandbox.jail.works():
        assert any("netcourse-probe-big: removed" in line for line in left), left
    assert not pathlib.Path("/tmp/netcourse-probe-big").exists()


@needs_root
def test_a_huge_allocation_fails():
    result = procs.run([probe("alloc", "#!/usr/bin/python3\nbytearray(20 << 30)\n")], timeout=T(60))
    assert result.returncode != 0 and b"MemoryError" in result.stderr, result.stderr


@needs_root
def test_no_reading_root_home():
    result = procs.run([probe("root-home", "#!/bin/sh\nls /root\n")], timeout=T(10))
    assert result.returncode != 0 and b"Permission denied" in result.stderr


@needs_root
def test_memory_beyond_the_cgroup_limit_is_killed_and_named():
    if not sandbox.cgroups.made:
        sandbox.cgroups.make()
    if "memory" not in sandbox.cgroups.dirs or sandbox.cgroups.kind != "v1":
        pytest.skip(f"no memory cgroup v1 here: {sandbox.cgroups.kind}")
    limit_file = sandbox.cgroups.dirs["memory"] / "memory.limit_in_bytes"
    before = limit_file.read_text().strip()
    limit_file.write_text(str(256 << 20))
    try:
        # 512 MiB touched page by page (python3 as the "program": bytearray zero-fills it)
        result = procs.run([probe("touch-memory", "#!/usr/bin/python3\nb = bytearray(512 << 20)\nprint(len(b))\n")],
                           timeout=T(60))
    finally:
        limit_file.write_text(before)
    assert result.returncode == -9, result.exit_description()
    assert "reached the memory limit" in result.exit_description()


def test_a_server_that_ignores_sigterm_is_killed(tmp_path):
    script = "trap '' TERM; echo port 1; exec sleep 1000"   # SIG_IGN survives exec
    start = time.monotonic()
    with start_server(fake_server(tmp_path, script)) as server:
        code = server.stop(timeout=1)
        mark = server.proc._nc_mark
    assert code is None, "a server that ignores SIGTERM must be SIGKILLed after the timeout"
    assert time.monotonic() - start < 10 and not still_running(mark)


# ---- an ordinary user -------------------------------------------------------------

USER = 65534
as_an_ordinary_user = pytest.mark.skipif(os.geteuid() != 0, reason="needs root to become an ordinary user")


@pytest.fixture(scope="module")
def user_course(tmp_path_factory):
    """A copy of the course that uid 65534 owns."""
    top = tmp_path_factory.mktemp("as-user")
    course = copy_course(top / "course")
    subprocess.run(["chown", "-R", f"{USER}:{USER}", str(top)], check=True, timeout=T(60))
    sandbox.let_through(top.parent)   # the run's 0700 temporary directories above it
    return course


def as_user(course, *argv, timeout=T(300)):
    """Runs argv in the course as uid 65534, the way a student runs it: as themselves."""
    command = ["setpriv", f"--reuid={USER}", f"--regid={USER}", "--clear-groups",
               "env", "-u", "NETCOURSE_NETNS", f"HOME={course}", *argv]
    return procs.run(command, timeout=timeout, cwd=course)


def left_by_the_user(course: pathlib.Path) -> list[str]:
    """The user's processes still running from the course (their command line names it), and
    the user's files under /tmp, /var/tmp and /dev/shm."""
    files = [entry.path for top in ("/tmp", "/var/tmp", "/dev/shm") if os.path.isdir(top)
             for entry in os.scandir(top) if entry.stat(follow_symlinks=False).st_uid == USER]
    return [f"pid {pid}: {command}" for pid in procfs.processes_of(USER)
            if str(course) in (command := procfs.command_line(pid))] + files


@as_an_ordinary_user
def test_an_ordinary_user_gets_a_complete_lesson(user_course):
    """The way most students run it: as themselves, where the checker makes a user and a
    network namespace of its own (unshare -r -n) and runs each program in the jail."""
    result = as_user(user_course, "make", "--no-print-directory", "solution-01")
    text = result.stdout.decode(errors="replace")
    assert result.returncode == 0 and "lesson 01 complete" in text, text[-3000:] + result.stderr.decode()[-2000:]
    assert "programs run as uid" not in text   # no sandbox line: a student is not told of it


HOSTILE_AS_USER = {   # mutant of lesson 01: the words its report must hold
    "hostile-fork-bomb": "up against the checker's limit of 1024",
    "hostile-setsid-double-fork": "killed it with all its children",
    "hostile-huge-file": "larger than the 256 MiB",
}


@as_an_ordinary_user
@needs_jail
@pytest.mark.parametrize("mutant", HOSTILE_AS_USER)
def test_an_ordinary_users_hostile_program_is_contained(user_course, mutant):
    """As yourself there is no sandbox uid and no cgroup: the jail alone limits the processes,
    kills all of them at the end, and keeps the program's /tmp apart."""
    from checker.mutants.hostile import TMP_FILE
    before = set(left_by_the_user(user_course))
    start = time.monotonic()
    result = as_user(user_course, sys.executable, "checker/run.py", "mutant", "01", mutant, "--only", "small")
    text = result.stdout.decode(errors="replace")
    assert result.returncode == 1 and "✗ prints a short page" in text, text[-3000:] + result.stderr.decode()[-2000:]
    assert HOSTILE_AS_USER[mutant] in text, text[-3000:]
    assert time.monotonic() - start < T(120)
    left = set(left_by_the_user(user_course)) - before
    assert not left, left
    assert not pathlib.Path(TMP_FILE).exists()
    note(next(line.strip() for line in text.splitlines() if HOSTILE_AS_USER[mutant] in line))
