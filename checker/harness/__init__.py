"""The checker's harness: one small API that every lesson's checks use.

    from checker.harness import *

    check(title, needs=...)   decorator: a test function becomes a check
    fail(what, tried=, expected=, seen=, hint=)   report a failed check
    expect_bytes(...)         compare bytes, showing a caret at the first difference
    note(text)                a line shown under a passing check
    T(seconds)                a timeout, scaled by NETCOURSE_TIMEOUT_SCALE
    run(argv, timeout=)       run a program in its own process group, always reaped
    start_server(binary)      start a server with -p 0, read its "port N"
    LineClient(port)          a line-based protocol client
    Capture(ports)            a dumpcap capture proven ready, read with tshark
    trace(argv, syscalls)     strace a program; the calls it made, parsed
    LockTrace(path), locktrace_env(path)   mutexes a program takes, socket I/O done holding one
    start_tsan_server(binary, log_dir), run_tsan(argv, log_dir)   a TSan build, retried under setarch -R
    read_reports(log_dir), parse_reports(text)   TSan reports, each with a one-line summary()
    diagnose_hang(pid, source_dir)   which thread of a hung process waits for which mutex, and where
    wait_until(condition, timeout, what)   poll a condition until true or the deadline (no sleeps as sync)
    procfs                    what /proc says: memory, CPU time, descriptors, TCP sockets and queues
    watched.waiting(pid)      what a process asleep in select/poll/epoll_wait watches, and what it misses
"""
from .timeouts import T
from .report import CheckFailed, CannotCheck, HeldBack, fail, cannot_check, note, expect_bytes, show_bytes
from .checks import check
from .procs import run, spawn, start_server, free_port, closed_port, Server, RunResult
from .client import LineClient, ask, connect
from .capture import Capture, Packet, describe_all
from .strace import trace, Trace, Syscall
from .locktrace import LockTrace, locktrace_env
from .tsan import (tsan_env, parse_reports, read_reports, is_mapping_failure, start_tsan_server,
                   run_tsan, TsanReport)
from .deadlock import diagnose_hang, thread_states
from .waiting import wait_until, Deadline
from . import procfs, sandbox, watched

__all__ = [name for name in dir() if not name.startswith("_")]
