"""Out of descriptors, the event loops of lessons 13 and 14 must sleep, not spin.

When a process has used up its open-files limit, accept() fails with EMFILE and
leaves the client in the listen backlog. The listener then stays readable, so
a loop that keeps watching it wakes at once, fails again, and burns a whole
core without a word (the warning is printed once). The loop in
common/event_loop.cc stops watching the listener until a client closes.

Each solution is started under `prlimit --nofile=32:32` and 40 clients connect
and stay idle: about 28 are accepted, the rest wait in the backlog. The
server's CPU time (/proc/PID/stat) over one second must stay near zero, and
once some clients leave, the waiting ones must be served.
"""
import pathlib
import socket

import pytest

from checker.harness import T, ask, note, procfs, run, start_server, wait_until

ROOT = pathlib.Path(__file__).resolve().parents[2]
LIMIT = 32          # the server's open-files limit, soft and hard: raise_open_files_limit cannot help
CLIENTS = 40        # more than the limit lets it accept
WINDOW = 1.0        # seconds of CPU time measured
MAX_SHARE = 0.10    # of one core: an idle loop that sleeps uses ~0; one that spins, ~1


@pytest.fixture(scope="module", params=["13-select", "14-epoll"])
def binary(request) -> pathlib.Path:
    path = f"build/solutions/{request.param}/weensydb"
    built = run(["make", "--no-print-directory", path], timeout=T(300), cwd=ROOT)
    assert built.returncode == 0, built.stderr.decode(errors="replace")
    return ROOT / path




def get_x(sock) -> bytes:
    """Asks `get x` and returns the reply line (b"" if none came in time)."""
    return ask(sock, b"get x\r\n", b"\n")


def test_out_of_descriptors_the_loop_sleeps(binary):
    wrapper = ("prlimit", f"--nofile={LIMIT}:{LIMIT}", "--")
    with start_server(binary, wrapper=wrapper) as s:
        clients = []
        try:
            for _ in range(CLIENTS):
                clients.append(socket.create_connection(("127.0.0.1", s.port), timeout=T(5)))
            # Every descriptor in use, and clients left in the backlog: accept() has
            # failed with EMFILE (the server tries to accept all waiting clients at once).
            full = wait_until(lambda: procfs.fd_count(s.pid) >= LIMIT
                              and procfs.accept_queue(s.port) > 0, T(5),
                              "the server is out of descriptors with clients waiting")
            assert full, (f"the server never ran out of descriptors: {procfs.fd_count(s.pid)} "
                          f"open, {procfs.accept_queue(s.port)} clients waiting")
            share = procfs.cpu_share(s.pid, WINDOW)
            waiting = procfs.accept_queue(s.port)
            assert share < MAX_SHARE, (
                f"{binary.parent.name} used {share:.0%} of a core while out of descriptors "
                f"({waiting} clients in the backlog): the loop spins on a readable listener")

            # The accept queue is first in, first out: the first clients are the accepted
            # ones. Once they leave, every client that waited must be accepted and served.
            leaving = CLIENTS - LIMIT + 8
            for sock in clients[:leaving]:
                sock.close()
            replies = [get_x(sock) for sock in clients[leaving:]]
            served = replies.count(b"END\r\n")
            assert served == len(replies), (
                f"after {leaving} clients left, {served} of the {len(replies)} others were "
                f"served: {sorted(set(replies))}")
            assert s.alive()
            note(f"{binary.parent.name}: {share:.1%} of a core over {WINDOW:.0f} s while out of "
                 f"descriptors, {waiting} clients in the backlog; all served once others left")
        finally:
            for sock in clients:
                sock.close()
