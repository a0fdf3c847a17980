"""harness/watched.py reads what a sleeping poller watches, and names what it misses.

A small Python child sleeps in select() or epoll_wait() (Python's select module makes the
same system calls) while a client waits in its listener's backlog; the view from /proc
must name the listener and why the poller does not see it.
"""
import socket
import subprocess
import sys
import textwrap

import pytest

from checker.harness import T, procfs, wait_until, watched
from checker.harness.procs import kill_group, spawn

CHILDREN = {
    # select() asked about nothing: nfds 0, and the listener is not below it
    "nfds": """
        import select, socket, sys
        listener = socket.create_server(("127.0.0.1", 0))
        print(listener.getsockname()[1], listener.fileno(), flush=True)
        select.select([], [], [], None)
    """,
    # select() watches another descriptor, a higher one, and not the listener
    "not_in_set": """
        import os, select, socket, sys
        listener = socket.create_server(("127.0.0.1", 0))
        r, w = os.pipe()          # (opened after the listener: a higher number)
        print(listener.getsockname()[1], listener.fileno(), flush=True)
        select.select([r], [], [], None)
    """,
    # edge-triggered: the first client is reported once, then never again
    "edge_triggered": """
        import select, socket, sys
        listener = socket.create_server(("127.0.0.1", 0))
        ep = select.epoll()
        ep.register(listener.fileno(), select.EPOLLIN | select.EPOLLET)
        print(listener.getsockname()[1], listener.fileno(), flush=True)
        ep.poll()          # the first client: reported once, not accepted
        ep.poll()          # asleep, with the client still in the backlog
    """,
    # the listener was never added to the epoll list
    "not_in_list": """
        import os, select, socket, sys
        listener = socket.create_server(("127.0.0.1", 0))
        r, w = os.pipe()
        ep = select.epoll()
        ep.register(r, select.EPOLLIN)
        print(listener.getsockname()[1], listener.fileno(), flush=True)
        ep.poll()
    """,
}


@pytest.mark.parametrize("cause", sorted(CHILDREN))
def test_names_what_a_sleeping_poller_misses(cause):
    child = spawn([sys.executable, "-c", textwrap.dedent(CHILDREN[cause])], stdout=subprocess.PIPE)
    try:
        port, listener_fd = map(int, child.stdout.readline().split())
        with socket.create_connection(("127.0.0.1", port), timeout=T(5)):
            assert wait_until(lambda: procfs.accept_queue(port) == 1, T(5), "the client queued")
            view = None

            def asleep_and_read():
                nonlocal view
                view = watched.waiting(child.pid)
                return view.call is not None and view.unseen()
            assert wait_until(asleep_and_read, T(5), "the child asleep in its poller"), view
            unseen = view.unseen()
            assert [u.fd for u in unseen] == [listener_fd], view.describe()
            assert unseen[0].cause == cause, (unseen[0], view.describe())
            assert "waiting to be accepted" in unseen[0].what
    finally:
        kill_group(child)
        child.wait(timeout=T(5))


def test_a_poller_that_watches_the_listener_misses_nothing():
    child = spawn([sys.executable, "-c", textwrap.dedent("""
        import select, socket, sys, time
        listener = socket.create_server(("127.0.0.1", 0))
        print(listener.getsockname()[1], listener.fileno(), flush=True)
        sys.stdin.readline()          # the client is queued: now sleep on the listener
        select.select([listener], [], [], None)
        time.sleep(60)                # (it returned at once: the client is there)
    """)], stdin=subprocess.PIPE, stdout=subprocess.PIPE)
    try:
        port, listener_fd = map(int, child.stdout.readline().split())
        with socket.create_connection(("127.0.0.1", port), timeout=T(5)):
            assert wait_until(lambda: procfs.accept_queue(port) == 1, T(5), "the client queued")
            child.stdin.write(b"go\n")
            child.stdin.flush()
            assert wait_until(lambda: "nanosleep" in watched.waiting(child.pid).activity, T(5),
                              "select() returned and the child sleeps")
            assert watched.waiting(child.pid).unseen() == []
    finally:
        kill_group(child)
        child.wait(timeout=T(5))
