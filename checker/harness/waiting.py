"""Waiting for a condition, the one way the checker and the benchmarks do it.

A check never sleeps for a fixed time hoping that something has happened: it
asks the system (a socket's queue in /proc, a process's state, a file) over
and over until the answer is yes or a deadline passes. Every such loop in the
checker and the benchmarks is this one function, so the deadline arithmetic
and the polling interval live in one place.
"""
import time


def wait_until(condition, timeout: float, what: str = "", interval: float = 0.01):
    """Calls condition() until it returns something true, and returns that value.

    Gives up after `timeout` seconds (pass it through T() so that
    NETCOURSE_TIMEOUT_SCALE stretches it) and returns condition()'s last value,
    which is false: the caller decides whether that is a failure. `what` names
    the condition for whoever reads the code or a traceback."""
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value or time.monotonic() >= deadline:
            return value
        time.sleep(interval)


class Deadline:
    """A point in time to stop at, for loops that do more than poll one condition
    (e.g. read a socket until a reply is whole): `while not deadline.passed(): …`."""

    def __init__(self, timeout: float):
        self.end = time.monotonic() + timeout

    def left(self) -> float:
        return max(0.0, self.end - time.monotonic())

    def passed(self) -> bool:
        return time.monotonic() >= self.end
