"""The fault injector (tools/programs/fault_inject.cc, harness/faults.py).

Correct programs give the same bytes under short sends, short receives and
EINTR; a client that ignores a short send is exposed by it; and the injector
logs what it did, so a check can say which call was cut short.
"""
import hashlib
import pathlib
import tempfile

import pytest

from checker.harness import T, run, start_server
from checker.harness.faults import faults_env, read_faults
from checker.harness.target import ROOT, make, tool
from checker.mutants import replaced

BODY_SIZE = 100_000
SHORT_SEND_IGNORED = [("    if (!write_all(fd, request.data(), request.size()))\n        die(\"send\");\n",
                       "    if (send(fd, request.data(), request.size(), 0) < 0)   // a short send is ignored\n"
                       "        die(\"send\");\n")]


def fetch(client: pathlib.Path, port: int, env=None, timeout: float = 10):
    return run([client, "127.0.0.1", port, f"/bytes/{BODY_SIZE}"], timeout=T(timeout), env=env)


@pytest.fixture(scope="module")
def httpd():
    with start_server(tool("course-httpd")) as server:
        yield server


def solution_client() -> pathlib.Path:
    path = "build/solutions/01-raw-client/http_get"
    make([path], what="lesson 01's solution")
    return ROOT / path


@pytest.fixture
def log_dir():
    """Where the program under test writes its fault log: a directory of its own under /tmp
    (pytest's tmp_path sits under a 0700 directory that a sandboxed program cannot enter)."""
    with tempfile.TemporaryDirectory(prefix="netcourse-faults-") as path:
        yield pathlib.Path(path)


def test_a_correct_client_gets_the_same_bytes_under_faults(httpd, log_dir):
    client = solution_client()
    clean = fetch(client, httpd.port)
    log = log_dir / "faults"
    faulty = fetch(client, httpd.port, faults_env(log, short_send=1, short_recv=7, eintr=3))
    assert clean.returncode == 0 and faulty.returncode == 0, faulty.stderr
    assert hashlib.sha256(faulty.stdout).digest() == hashlib.sha256(clean.stdout).digest()
    faults = read_faults(log)
    assert any(f.kind == "short" and f.call in ("write", "send") and f.result == 1 for f in faults)
    assert any(f.kind == "short" and f.call in ("read", "recv") for f in faults)
    assert any(f.kind == "eintr" for f in faults)
    assert len(faults) <= 1000   # the log is capped


def test_a_client_that_ignores_a_short_send_is_exposed(httpd, log_dir):
    source = (ROOT / "solutions/01-raw-client/http_get.cc").read_text()
    out = ROOT / "build/src/mutants/selftest-short-send/01-raw-client"
    out.mkdir(parents=True, exist_ok=True)
    (out / "http_get.cc").write_text(replaced(source, SHORT_SEND_IGNORED, "short-send selftest"))
    binary = "build/mutants/selftest-short-send/01-raw-client/http_get"
    make([binary], what="a client that ignores a short send")
    # Without faults the bug hides: loopback takes the whole request at once.
    assert fetch(ROOT / binary, httpd.port).returncode == 0
    log = log_dir / "faults"
    result = fetch(ROOT / binary, httpd.port, faults_env(log, short_send=1), timeout=3)
    assert result.timed_out or result.returncode != 0 or len(result.stdout) < BODY_SIZE
    assert str(read_faults(log)[0]).startswith("send() on fd")


def test_files_and_datagrams_are_left_alone(tmp_path):
    """Only stream sockets are cut short: a short datagram would not be a thing the kernel does."""
    log = tmp_path / "faults"
    script = ("import socket,sys\n"
              "a=socket.socket(socket.AF_INET,socket.SOCK_DGRAM); a.bind(('127.0.0.1',0))\n"
              "b=socket.socket(socket.AF_INET,socket.SOCK_DGRAM)\n"
              "b.sendto(b'x'*500,a.getsockname()); d=a.recv(1000)\n"
              "sys.stdout.write(str(len(d)))\n")
    result = run(["/usr/bin/python3", "-c", script], timeout=T(10),
                 env=faults_env(log, short_send=1, short_recv=1))
    assert result.stdout == b"500", result.stderr
    assert read_faults(log) == []
