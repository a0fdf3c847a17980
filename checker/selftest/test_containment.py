"""Hostile programs meet the harness: each ends within its timeout, with bounded memory,
reported in words, and nothing of it keeps running.

The programs are small shell commands standing for student code that floods its
output, escapes its process group, or keeps its output open after it exits.
"""
import resource
import time

from checker.harness import T, procs, start_server


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
