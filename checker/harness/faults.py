"""Short and interrupted I/O on purpose: the fault injector (tools/programs/fault_inject.cc).

    env = faults_env(log, short_send=1, eintr=3)    # pass to run() or start_server()
    faults = read_faults(log)                        # what the program was made to meet

On loopback a blocking send() nearly always takes every byte and read() is
rarely interrupted, so code that ignores a short count or EINTR passes by luck.
Under the injector every send/write on a stream socket moves at most
short_send bytes, every recv/read asks for at most short_recv, and every
eintr-th call on a blocking socket fails with EINTR first: all things the
kernel may do (send(2), recv(2), signal(7)). A correct program gives the same
bytes with and without it. Plain builds only (sanitizers intercept the same calls).
"""
import os
import pathlib
from dataclasses import dataclass

from . import sandbox
from .target import tool

LIBRARY = "libfaultinject.so"


def faults_env(log: pathlib.Path, short_send: int = 0, short_recv: int = 0, eintr: int = 0,
               base: dict | None = None) -> dict:
    """An environment that runs a program under the fault injector, logging to `log`."""
    spec = ",".join(f"{name}={value}" for name, value in
                    (("short_send", short_send), ("short_recv", short_recv), ("eintr", eintr)) if value)
    env = dict(os.environ if base is None else base)
    env["LD_PRELOAD"] = str(tool(LIBRARY))
    env["NETCOURSE_FAULTS"] = spec
    env["NETCOURSE_FAULTS_LOG"] = str(sandbox.give_file(log))
    return env


@dataclass
class Fault:
    kind: str        # "short" or "eintr"
    call: str        # send, write, recv, read, sendto, recvfrom
    fd: int
    asked: int       # bytes the program asked to move
    given: int = -1  # short: bytes passed down to the kernel
    result: int = -1 # short: what the real call returned

    def __str__(self) -> str:
        if self.kind == "eintr":
            return f"{self.call}() on fd {self.fd} failed with EINTR before moving any of {self.asked} bytes"
        return f"{self.call}() on fd {self.fd} was asked for {self.asked} bytes and moved {self.result}"


def read_faults(log: pathlib.Path) -> list[Fault]:
    """The faults the injector made, in order (the first 1,000)."""
    faults = []
    try:
        lines = pathlib.Path(log).read_text().splitlines()
    except OSError:
        return faults
    for line in lines:
        words = line.split()
        if len(words) >= 4 and words[0] in ("short", "eintr"):
            numbers = [int(w) for w in words[2:]]
            faults.append(Fault(words[0], words[1], *numbers))
    return faults
