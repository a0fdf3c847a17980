"""The lock tracer (tools/programs/lock_trace.cc, harness/locktrace.py) on a program whose locking is known."""
import pathlib
import re

import pytest

from checker.harness import T, LockTrace, locktrace_env, run

ROOT = pathlib.Path(__file__).resolve().parents[2]

# Two std::mutex: the worker thread writes to a socket while holding A, then
# locks B and does no I/O, then try_locks A again, then reads the socket with
# no mutex held. Built with -O2, as the servers are: std::mutex::lock is
# inlined and must still reach pthread_mutex_lock through the PLT.
PROGRAM = r"""
#include <cstdio>
#include <mutex>
#include <sys/socket.h>
#include <thread>
#include <unistd.h>

static std::mutex a, b;

int main() {
    int fds[2];
    if (socketpair(AF_UNIX, SOCK_STREAM, 0, fds) != 0)
        return 1;
    std::printf("A=%p B=%p fd=%d\n", static_cast<void*>(&a), static_cast<void*>(&b), fds[0]);
    std::fflush(stdout);
    std::thread worker([&] {
        {
            std::lock_guard<std::mutex> hold(a);
            if (write(fds[0], "x", 1) != 1)
                _exit(3);
        }
        {
            std::lock_guard<std::mutex> hold(b);
        }
        if (a.try_lock())
            a.unlock();
        char c;
        if (read(fds[1], &c, 1) != 1)
            _exit(4);
    });
    worker.join();
    return 0;
}
"""


@pytest.fixture(scope="module")
def traced_program(tmp_path_factory) -> pathlib.Path:
    built = run(["make", "--no-print-directory", "build/tools/liblocktrace.so"], timeout=T(300), cwd=ROOT)
    assert built.returncode == 0, built.stderr.decode(errors="replace")
    tmp = tmp_path_factory.mktemp("locktrace")
    (tmp / "two_mutexes.cc").write_text(PROGRAM)
    compiled = run(["g++", "-std=c++20", "-O2", "-pthread", "-Wall", "-Wextra", "-Werror",
                    tmp / "two_mutexes.cc", "-o", tmp / "two_mutexes"], timeout=T(120))
    assert compiled.returncode == 0, compiled.stderr.decode(errors="replace")
    return tmp / "two_mutexes"


def run_traced(program, trace_file):
    result = run([program], timeout=T(10), env=locktrace_env(trace_file))
    assert result.returncode == 0, result.exit_description() + result.stderr.decode(errors="replace")
    found = re.fullmatch(rb"A=(0x[0-9a-f]+) B=(0x[0-9a-f]+) fd=(\d+)\n", result.stdout)
    assert found, result.stdout
    return int(found[1], 16), int(found[2], 16), int(found[3])


def test_trace_shows_both_mutexes_and_the_io_under_a(traced_program, tmp_path):
    trace = LockTrace(tmp_path / "trace")
    a, b, fd = run_traced(traced_program, trace.path)
    events = trace.read_new()
    locked = [e.addr for e in events if e.kind == "lock"]
    unlocked = [e.addr for e in events if e.kind == "unlock"]
    assert a != b
    assert locked.count(a) == 2, "the lock_guard and the try_lock of A"
    assert locked.count(b) == 1
    assert unlocked.count(a) == 2 and unlocked.count(b) == 1
    io = trace.io_while_locked()
    assert len(io) == 1, io                  # the read with no mutex held is not logged
    assert io[0].call == "write" and io[0].fd == fd and io[0].held == (a,)
    assert not [e for e in io if b in e.held]


def test_events_are_in_order_and_read_only_once(traced_program, tmp_path):
    trace = LockTrace(tmp_path / "trace")
    a, _, _ = run_traced(traced_program, trace.path)
    first = trace.read_new()
    assert trace.read_new() == []
    worker = trace.io_while_locked(first)[0].tid
    kinds = [e.kind for e in first if e.tid == worker and e.addr in (a, None)]
    assert kinds == ["lock", "io", "unlock", "lock", "unlock"], kinds
    run_traced(traced_program, trace.path)    # a second run appends: only its events are new
    assert len(trace.read_new()) == len(first)


def test_without_a_trace_file_it_only_forwards(traced_program, tmp_path):
    env = locktrace_env(tmp_path / "unused")
    del env["LOCKTRACE_FILE"]
    result = run([traced_program], timeout=T(10), env=env)
    assert result.returncode == 0, result.stderr
    assert not (tmp_path / "unused").exists()
