"""Lesson 16's additions to course-httpd (tools/programs/course_httpd.cc), tested on their own:
Range requests (206 and Content-Range, 416 for a range it cannot satisfy), HEAD, the same
bytes with --sendfile as without, sendfile() doing the sending, and --rate holding a
connection to its rate.

    /usr/bin/python3 checker/run.py selftest -k course_httpd_ranges
"""
import hashlib
import pathlib
import time

import pytest

from checker.harness import T, start_server, wait_until
from checker.harness.client import connect
from checker.harness.strace import read_trace_file, strace_prefix

ROOT = pathlib.Path(__file__).resolve().parents[2]
COURSE_HTTPD = ROOT / "build" / "tools" / "course-httpd"
LINE = 64


def text(n: int) -> bytes:
    """The first n bytes of course-httpd's /big text, made here independently."""
    lines = b"".join(b"%08d the quick brown fox jumps over the lazy dog 0123456789\n" % (i + 1)
                     for i in range(n // LINE + 1))
    return lines[:n]


def request(port: int, path: str, method="GET", range_=None) -> tuple[bytes, dict, bytes]:
    """(status line, headers, body) of one request."""
    extra = f"Range: {range_}\r\n" if range_ else ""
    with connect(port, timeout=T(20)) as sock:
        sock.sendall(f"{method} {path} HTTP/1.0\r\nHost: x\r\n{extra}\r\n".encode())
        data = b""
        while chunk := sock.recv(1 << 20):
            data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    status, *lines = head.split(b"\r\n")
    headers = {k.strip().lower(): v.strip() for k, _, v in (l.decode().partition(":") for l in lines)}
    return status, headers, body


@pytest.fixture(scope="module", params=["read+write", "sendfile"])
def server(request):
    if not COURSE_HTTPD.exists():
        pytest.fail("build/tools/course-httpd is missing: run `make programs` first")
    args = ["--sendfile"] if request.param == "sendfile" else []
    with start_server(COURSE_HTTPD, args=args) as s:
        yield s


def test_whole_object_unchanged(server):
    status, headers, body = request(server.port, "/bytes/1000003")
    assert status == b"HTTP/1.0 200 OK"
    assert headers["content-length"] == "1000003" and headers["accept-ranges"] == "bytes"
    assert hashlib.sha256(body).digest() == hashlib.sha256(text(1000003)).digest()


@pytest.mark.parametrize("range_,first,last", [
    ("bytes=0-0", 0, 0), ("bytes=10-19", 10, 19), ("bytes=16383-16385", 16383, 16385),
    ("bytes=999990-", 999990, 999999), ("bytes=999990-5000000", 999990, 999999),
    ("bytes=0-999999", 0, 999999)])
def test_range_206(server, range_, first, last):
    status, headers, body = request(server.port, "/bytes/1000000", range_=range_)
    assert status == b"HTTP/1.0 206 Partial Content"
    assert headers["content-range"] == f"bytes {first}-{last}/1000000"
    assert int(headers["content-length"]) == last + 1 - first
    assert body == text(1000000)[first:last + 1]
    # the log line lesson 16 reads (written before the close, read by a thread of the harness)
    assert wait_until(lambda: f"[{range_}] -> 206" in server.stderr().decode(), T(5), "the log line")


@pytest.mark.parametrize("range_", ["bytes=1000000-", "bytes=20-10", "bytes=abc", "items=0-5", "bytes=-5"])
def test_range_416(server, range_):
    status, headers, _ = request(server.port, "/bytes/1000000", range_=range_)
    assert status == b"HTTP/1.0 416 Range Not Satisfiable"
    assert headers["content-range"] == "bytes */1000000"


def test_range_elsewhere_ignored(server):
    status, _, body = request(server.port, "/small", range_="bytes=0-3")
    assert status == b"HTTP/1.0 200 OK" and body == b"Hello from the netcourse server!\n"


def test_head(server):
    status, headers, body = request(server.port, "/bytes/12345", method="HEAD")
    assert status == b"HTTP/1.0 200 OK" and headers["content-length"] == "12345" and body == b""


def test_sendfile_sends_the_body(tmp_path):
    """With --sendfile the body leaves by sendfile(), without, by write(); same bytes."""
    n = 4 << 20
    for args, call in (([], "write"), (["--sendfile"], "sendfile")):
        out = str(tmp_path / f"trace-{call}")
        with start_server(COURSE_HTTPD, args=args, wrapper=strace_prefix(out, ["write", "sendfile"])) as s:
            _, _, body = request(s.port, f"/bytes/{n}")
            s.stop()
        assert body == text(n)
        moved = sum(c.result or 0 for c in read_trace_file(out) if c.name == call and (c.result or 0) > 1000)
        assert moved >= n, f"{call} moved {moved} bytes of {n}"


@pytest.mark.parametrize("args", [["--rate", "4"], ["--rate", "4", "--sendfile"]])
def test_rate(args):
    """4 MB/s: 3 MB take about 0.75 s (the first 64 KiB burst is free)."""
    with start_server(COURSE_HTTPD, args=args) as s:
        start = time.monotonic()
        status, _, body = request(s.port, "/bytes/3000000")
        took = time.monotonic() - start
    assert status == b"HTTP/1.0 200 OK" and body == text(3000000)
    assert 0.6 < took < T(3.0), f"3 MB at 4 MB/s took {took:.2f} s"


def test_bad_rate_refused():
    from checker.harness import run
    result = run([COURSE_HTTPD, "-p", "0", "--rate", "zero"], timeout=T(5))
    assert result.returncode == 2 and b"--rate" in result.stderr
