"""Running a program that may hang, and saying what it was doing when it had to be killed.

    result = run_watched([client, "127.0.0.1", port, "/small"], timeout=T(5))
    if result.timed_out:
        result.activity    # "blocked in recvfrom()", or "running: 98% of a core"

A hint for a hang should follow what the program was doing: waiting in recv() for a
reply that never came is not the same mistake as a loop that spins on recv() == 0.
/proc/PID/task/TID/syscall tells which system call a thread is blocked in (see
deadlock.thread_states); a thread blocked in none is running, and its CPU time shows how hard.
"""
from . import procfs
from .deadlock import thread_states
from .procs import RunResult, run

CPU_WINDOW = 0.2   # seconds over which a running program's CPU share is measured


def activity(pid: int) -> str | None:
    """What the process's main thread is doing now, in words; None if /proc cannot say."""
    try:
        states = thread_states(pid)
    except OSError:
        return None
    main = next((t for t in states if t.tid == pid), states[0] if states else None)
    if main is None:
        return None
    if main.syscall is not None or main.problem:
        return main.activity()
    try:
        share = procfs.cpu_share(pid, CPU_WINDOW)
    except (OSError, IndexError, ValueError):
        return main.activity()
    return f"running, not waiting in any call: {share:.0%} of a core over {CPU_WINDOW:.1f} s"


def run_watched(argv, timeout: float, env=None) -> RunResult:
    """Like procs.run(), but a program still running at the timeout is looked at before it is
    killed: the result's `activity` then says what it was doing (else it is None)."""
    return run(argv, timeout=timeout, env=env, on_timeout=activity)
