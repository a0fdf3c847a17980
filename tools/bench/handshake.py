#!/usr/bin/env python3
"""Lesson 15's HTTP transaction, packet by packet: the course's httpd beside nginx.

    make bench-handshake                     (builds everything, then runs this)
    /usr/bin/python3 -m tools.bench.handshake --repeat 5
    /usr/bin/python3 -m tools.bench.handshake --course-dir /tmp/my-build   (another httpd/http_get)

One transaction is: connect, `GET PATH HTTP/1.0`, the reply (status line,
headers, then the page), both sides close. It is made by every client against
every server, each time under a packet capture of its own (the checker's
Capture: dumpcap, proven ready and drained by a UDP probe barrier), in the
checker's private network namespace, so the loopback carries nothing else.

Servers:
  * lesson 15's httpd with no switches, and with its best ones (SERVER_BEST);
  * Debian's nginx, configured as a tuned static server would be:
    `listen 127.0.0.1:PORT deferred; sendfile on; tcp_nopush on;`. It serves
    the very bytes the course's httpd serves for PATH (fetched from it first),
    or, without a course httpd, a page of --body-size bytes.
Clients: lesson 15's http_get with no switches and with its best ones
(CLIENT_BEST), and curl --http1.0, an ordinary client.

For each pair the table counts: all TCP packets; pure ACKs in the handshake
(before the request); request and reply data segments; pure ACKs; FINs; RSTs.
A count that differed between the --repeat runs shows as MIN-MAX. Under the
table, each pair's packets in order, then whether the course's httpd (best
switches) needed more packets than nginx for the same client, then an
`strace -f` of nginx serving one request: TCP_DEFER_ACCEPT on the listening
socket, TCP_CORK (nginx's "tcp_nopush"), the header with writev(), the page
with sendfile().

This is a measurement, not a test. Every process it starts has a timeout and
is killed with its whole process group, Ctrl-C included; nothing waits on a
fixed sleep. Lesson 15's programs not built yet: their rows are skipped with a
line saying so. Exit status: 0; 1 if nginx or packet capture is unavailable,
or a program that exists failed.
"""
import argparse
import os
import pathlib
import re
import shlex
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field

ROOT = pathlib.Path(__file__).resolve().parents[2]
from checker import run as checker_run  # noqa: E402  (the checker's own network namespace)
from checker.harness import Capture, CannotCheck, CheckFailed  # noqa: E402
from checker.harness.procs import free_port, kill_all, kill_group, run, spawn, start_server  # noqa: E402
from checker.harness.timeouts import T  # noqa: E402

COURSE_DIR = ROOT / "build/solutions/15-handshake-tuning"
# The switches that make lesson 15's programs save the most packets.
SERVER_BEST = ["--defer-accept", "--cork", "--no-quickack"]
CLIENT_BEST = ["--defer-accept", "--no-quickack"]
NGINX_PACKAGE = "nginx"
STRACE_CALLS = "setsockopt,accept4,recvfrom,writev,sendfile,write,close"


# ---- the programs ---------------------------------------------------------------

@dataclass
class Server:
    label: str
    kind: str                      # "course" or "nginx"
    switches: list = field(default_factory=list)


@dataclass
class Client:
    label: str
    kind: str                      # "course" or "curl"
    switches: list = field(default_factory=list)


@dataclass
class Counts:
    packets: int = 0
    handshake_acks: int = 0        # pure ACKs before the first data segment
    request_segments: int = 0
    reply_segments: int = 0
    reply_bytes: int = 0
    pure_acks: int = 0
    fins: int = 0
    rsts: int = 0
    sequence: str = ""             # the packets in order, in a short notation


@dataclass
class Row:
    server: Server
    client: Client
    runs: list = field(default_factory=list)   # one Counts per repeat
    problem: str = ""


def nginx_binary() -> str | None:
    found = shutil.which("nginx") or "/usr/sbin/nginx"
    return found if os.access(found, os.X_OK) else None


def course_missing(name: str, course_dir: pathlib.Path) -> str:
    """Why lesson 15's program `name` cannot be run, or "" if it can."""
    binary = course_dir / name
    if os.access(binary, os.X_OK):
        return ""
    where = binary.relative_to(ROOT) if binary.is_relative_to(ROOT) else binary
    if course_dir == COURSE_DIR and not (ROOT / "solutions/15-handshake-tuning" / f"{name}.cc").exists():
        return f"not built yet: {where} (lesson 15 is not written yet)"
    return f"not built yet: {where} (make {where})" if course_dir == COURSE_DIR \
        else f"not built yet: {where} is missing"


# ---- starting servers ------------------------------------------------------------

class StartError(Exception):
    """A server could not be started; the message says why."""


def listening(port: int) -> bool:
    """Whether something listens on 127.0.0.1:port, read from /proc: unlike a test
    connection, this sends no packet (and wakes no TCP_DEFER_ACCEPT server)."""
    for name in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            rows = pathlib.Path(name).read_text().splitlines()[1:]
        except OSError:
            continue
        for row in rows:
            fields = row.split()
            if len(fields) > 3 and fields[3] == "0A" and int(fields[1].rsplit(":", 1)[1], 16) == port:
                return True
    return False


def wait_listening(proc: subprocess.Popen, port: int, log: pathlib.Path, what: str):
    deadline = time.monotonic() + T(10)
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise StartError(f"{what} exited with status {proc.returncode} before listening"
                             + last_lines(log))
        if listening(port):
            return
        time.sleep(0.02)
    raise StartError(f"{what} did not listen on port {port} within {T(10):.0f} s" + last_lines(log))


def last_lines(path: pathlib.Path, count: int = 4) -> str:
    try:
        rows = path.read_text(errors="replace").strip().splitlines()[-count:]
    except OSError:
        return ""
    return "".join(f"\n      | {row}" for row in rows)


def stop(proc: subprocess.Popen):
    """SIGTERM to the process group, then SIGKILL (and reaping) if it lingers."""
    if proc.poll() is None:
        kill_group(proc, signal.SIGTERM)
        try:
            proc.wait(T(5))
        except subprocess.TimeoutExpired:
            pass
    kill_group(proc)


NGINX_CONF = """\
# Generated by tools/bench/handshake.py: one static page, served as a tuned
# nginx serves static files.
{user}master_process off;
worker_processes 1;
error_log {dir}/error.log error;
pid {dir}/nginx.pid;
events {{
    worker_connections 64;
}}
http {{
    access_log off;
    client_body_temp_path {dir}/client_body;
    proxy_temp_path {dir}/proxy;
    fastcgi_temp_path {dir}/fastcgi;
    uwsgi_temp_path {dir}/uwsgi;
    scgi_temp_path {dir}/scgi;
    default_type text/plain;
    sendfile on;
    tcp_nopush on;
    server {{
        listen 127.0.0.1:{port} deferred;
        root {dir}/www;
    }}
}}
"""


def nginx_argv(directory: pathlib.Path) -> list:
    return [nginx_binary(), "-p", directory, "-c", directory / "nginx.conf",
            "-e", directory / "error.log", "-g", "daemon off;"]


def prepare_nginx(directory: pathlib.Path, path: str, body: bytes) -> int:
    """Writes nginx.conf and the page into directory; returns the port it will use."""
    port = free_port()
    page = directory / "www" / path.lstrip("/")
    if path.endswith("/"):
        page = page / "index.html"    # nginx's index for a directory
    page.parent.mkdir(parents=True, exist_ok=True)
    page.write_bytes(body)
    # As root, nginx would switch to `nobody` (not mapped in a user namespace): stay root.
    user = "user root;\n" if os.geteuid() == 0 else ""
    (directory / "nginx.conf").write_text(NGINX_CONF.format(user=user, dir=directory, port=port))
    return port


def start_nginx(directory: pathlib.Path, port: int, wrapper=()) -> subprocess.Popen:
    log = directory / "nginx.out"
    with open(log, "wb") as out:
        proc = spawn([*wrapper, *nginx_argv(directory)], stdout=out, stderr=subprocess.STDOUT)
    try:
        wait_listening(proc, port, directory / "error.log", "nginx")
    except BaseException:
        stop(proc)
        raise
    return proc


def start_course(server: Server, course_dir: pathlib.Path):
    """(process, port) of lesson 15's httpd, started with -p 0 and its switches."""
    try:
        s = start_server(course_dir / "httpd", args=server.switches, timeout=T(5))
    except CheckFailed as failure:
        raise StartError(f"{failure.what} (saw: {failure.seen})"
                         + "".join(f"\n      | {d}" for d in failure.details)) from None
    return s.proc, s.port


def fetch(port: int, path: str) -> tuple[bytes, bytes]:
    """(header, body) of `GET path HTTP/1.0` from 127.0.0.1:port, with a timeout."""
    with socket.create_connection(("127.0.0.1", port), timeout=T(5)) as sock:
        sock.sendall(f"GET {path} HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n".encode())
        reply = b""
        while chunk := sock.recv(65536):
            reply += chunk
    header, sep, body = reply.partition(b"\r\n\r\n")
    if not sep:
        raise StartError(f"its reply to GET {path} has no blank line after the headers")
    return header, body


# ---- one transaction under a capture ---------------------------------------------

def client_argv(client: Client, port: int, path: str, course_dir: pathlib.Path) -> list:
    if client.kind == "curl":
        return ["curl", "--http1.0", "-s", "-S", "-o", "/dev/null", "--max-time", f"{T(10):.0f}",
                f"http://127.0.0.1:{port}{path}"]
    return [course_dir / "http_get", *client.switches, "127.0.0.1", port, path]


def kinds(packets, port: int) -> str:
    """e.g. "SYN> <SYN-ACK DATA> <DATA+FIN ACK> FIN> <ACK": > from the client, < from the server."""
    out = []
    for p in packets:
        text = p.kind + ("+FIN" if p.fin and p.kind != "FIN" else "")
        out.append(f"{text}>" if p.from_client(port) else f"<{text}")
    return " ".join(out)


def count(packets, port: int) -> Counts:
    first_data = next((p.number for p in packets if p.length > 0), None)
    c = Counts(packets=len(packets), sequence=kinds(packets, port))
    for p in packets:
        if p.kind == "ACK":
            c.pure_acks += 1
            if first_data is None or p.number < first_data:
                c.handshake_acks += 1
        if p.length > 0 and p.from_client(port):
            c.request_segments += 1
        if p.length > 0 and not p.from_client(port):
            c.reply_segments += 1
            c.reply_bytes += p.length
        c.fins += p.fin
        c.rsts += p.rst
    return c


def transaction(client: Client, port: int, args, work: pathlib.Path) -> Counts:
    """One transaction under its own capture; its counts. Raises StartError if the client failed."""
    directory = pathlib.Path(tempfile.mkdtemp(prefix="cap-", dir=work))
    with Capture([port], directory=str(directory)) as cap:
        result = run(client_argv(client, port, args.path, args.course_dir), timeout=T(10))
    if result.timed_out or result.returncode != 0:
        why = result.stderr.decode(errors="replace").strip().splitlines()
        raise StartError(f"{client.label}: {result.exit_description()}"
                         + (f": {why[-1]}" if why else ""))
    packets = [p for p in cap.tcp_packets() if port in (p.src_port, p.dst_port)]
    if not any(p.syn for p in packets):
        raise StartError(f"{client.label}: the capture holds no SYN to port {port}: try "
                         f"`tshark -r FILE` by hand, it may not read captures here")
    return count(packets, port)


def measure_server(server: Server, clients, rows: dict, args, work: pathlib.Path, body: bytes):
    print(f"[handshake] {server.label} ...", flush=True)
    ndir = None
    try:
        if server.kind == "nginx":
            ndir = pathlib.Path(tempfile.mkdtemp(prefix="nginx-", dir=work))
            port = prepare_nginx(ndir, args.path, body)
            proc = start_nginx(ndir, port)
        else:
            proc, port = start_course(server, args.course_dir)
    except StartError as e:
        print(f"    {server.label} did not start: {e}", flush=True)
        for client in clients:
            rows[(server.label, client.label)].problem = f"did not start: {str(e).splitlines()[0]}"
        return
    try:
        for client in clients:
            row = rows[(server.label, client.label)]
            if row.problem:
                continue
            for _ in range(args.repeat):
                try:
                    row.runs.append(transaction(client, port, args, work))
                except StartError as e:
                    row.problem = str(e)
                    print(f"    {row.problem}", flush=True)
                    break
                if proc.poll() is not None:
                    row.problem = f"{server.label} exited with status {proc.returncode}"
                    print(f"    {row.problem}" + (last_lines(ndir / "error.log") if ndir else ""))
                    return
    finally:
        stop(proc)


# ---- nginx under strace ----------------------------------------------------------

def strace_nginx(client: Client, args, work: pathlib.Path, body: bytes) -> list[str]:
    """The system calls nginx makes to start and to serve one request (filtered)."""
    if shutil.which("strace") is None:
        return ["(strace is not installed: Debian package strace)"]
    ndir = pathlib.Path(tempfile.mkdtemp(prefix="nginx-strace-", dir=work))
    port = prepare_nginx(ndir, args.path, body)
    out = ndir / "strace.txt"
    try:
        proc = start_nginx(ndir, port, wrapper=["strace", "-f", "-qq", "-s", "40",
                                                "-e", f"trace={STRACE_CALLS}", "-o", out])
    except StartError as e:
        return [f"(nginx under strace did not start: {e})"]
    try:
        result = run(client_argv(client, port, args.path, args.course_dir), timeout=T(10))
        if result.returncode != 0:
            return [f"({client.label} failed under strace: {result.exit_description()})"]
    finally:
        stop(proc)
    text = out.read_text(errors="replace").splitlines() if out.exists() else []
    # Everything but failed accept4()s (EAGAIN) and the closes of other files than connections.
    connections, lines = set(), []
    for line in text:
        if "EAGAIN" in line or re.match(r"\d+ +(---|\+\+\+) ", line):   # signals, exits
            continue
        if accepted := re.search(r"accept4\(.*\) = (\d+)$", line):
            connections.add(accepted.group(1))
        closed = re.search(r"close\((\d+)\)", line)
        if closed and closed.group(1) not in connections:
            continue
        lines.append(line)
    return lines or ["(strace recorded none of: " + STRACE_CALLS + ")"]


# ---- the table ---------------------------------------------------------------------

COLUMNS = [("packets", "packets"), ("hs ACK", "handshake_acks"), ("req seg", "request_segments"),
           ("reply seg", "reply_segments"), ("reply B", "reply_bytes"), ("pure ACK", "pure_acks"),
           ("FIN", "fins"), ("RST", "rsts")]


def spread(runs, attr: str) -> str:
    values = [getattr(r, attr) for r in runs]
    low, high = min(values), max(values)
    return str(low) if low == high else f"{low}-{high}"


def print_table(servers, clients, rows: dict, args):
    sw = max(len(s.label) for s in servers) + 2
    cw = max(len(c.label) for c in clients) + 2
    print()
    print(f"One HTTP/1.0 transaction (GET {args.path}, {args.body_size_note}), packets on the "
          f"loopback, {args.repeat} run(s) each")
    head = "".join(f"{name:>10}" for name, _ in COLUMNS)
    print(f"{'server':<{sw}}{'client':<{cw}}{head}")
    for s in servers:
        for c in clients:
            row = rows[(s.label, c.label)]
            if not row.runs:
                print(f"{s.label:<{sw}}{c.label:<{cw}}  {row.problem}")
                continue
            cells = "".join(f"{spread(row.runs, attr):>10}" for _, attr in COLUMNS)
            print(f"{s.label:<{sw}}{c.label:<{cw}}{cells}" + ("  (then failed)" if row.problem else ""))
    print("hs ACK: pure ACKs before the request; seg: data segments; reply B: reply bytes "
          "(headers differ: nginx sends more of them); MIN-MAX: runs differed.")
    print()
    print("The packets of the first run, in order (> client to server, < server to client):")
    for s in servers:
        for c in clients:
            row = rows[(s.label, c.label)]
            if row.runs:
                print(f"  {s.label} / {c.label}:")
                print(f"      {row.runs[0].sequence}")


def verdicts(servers, clients, rows: dict) -> list[str]:
    """For each client: the course's best httpd vs nginx, by total packets."""
    best = servers[1] if len(servers) > 2 else None
    nginx = servers[-1]
    out = []
    for c in clients:
        ours = rows.get((best.label, c.label)) if best else None
        theirs = rows.get((nginx.label, c.label))
        if not (ours and ours.runs and theirs and theirs.runs):
            continue
        a = max(r.packets for r in ours.runs)
        b = min(r.packets for r in theirs.runs)
        verdict = "no more than nginx" if a <= b else "MORE than nginx"
        out.append(f"  {c.label:<{max(len(x.label) for x in clients)}}  {best.label}: {a} packets, "
                   f"nginx: {b}: {verdict}")
    return out


# ---- main ------------------------------------------------------------------------

def parse_args():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("-r", "--repeat", type=int, default=int(os.environ.get("BENCH_REPEAT", "3")),
                        help="transactions per server and client (default: $BENCH_REPEAT or 3)")
    parser.add_argument("--path", default="/", help="the page to GET (default: /)")
    parser.add_argument("--body-size", type=int, default=512,
                        help="nginx's page size when there is no course httpd to copy it from")
    parser.add_argument("--course-dir", type=pathlib.Path,
                        default=pathlib.Path(os.environ.get("HANDSHAKE_COURSE_DIR", COURSE_DIR)),
                        help="where httpd and http_get are (default: build/solutions/15-handshake-tuning)")
    parser.add_argument("--server-best", default=os.environ.get("HANDSHAKE_SERVER_BEST",
                                                                " ".join(SERVER_BEST)),
                        help=f"httpd's best switches (default: {' '.join(SERVER_BEST)})")
    parser.add_argument("--client-best", default=os.environ.get("HANDSHAKE_CLIENT_BEST",
                                                                " ".join(CLIENT_BEST)),
                        help=f"http_get's best switches (default: {' '.join(CLIENT_BEST)})")
    parser.add_argument("--no-strace", action="store_true", help="skip nginx's strace excerpt")
    args = parser.parse_args()
    args.course_dir = args.course_dir.resolve()
    args.repeat = max(1, args.repeat)
    return args


def page_body(args) -> bytes:
    """The course httpd's page for args.path (so nginx serves the same bytes), else a
    generated one of --body-size bytes."""
    if not course_missing("httpd", args.course_dir):
        try:
            proc, port = start_course(Server("httpd", "course"), args.course_dir)
        except StartError as e:
            print(f"[handshake] the course httpd did not start: {e}", flush=True)
        else:
            try:
                header, body = fetch(port, args.path)
                status = header.split(b"\r\n", 1)[0].decode(errors="replace")
                args.body_size_note = f"{len(body)}-byte page, the course httpd's"
                print(f"[handshake] the course httpd answers GET {args.path} with `{status}` and a "
                      f"{len(body)}-byte page: nginx gets the same bytes to serve", flush=True)
                return body
            except (OSError, StartError) as e:
                print(f"[handshake] could not fetch {args.path} from the course httpd: {e}",
                      flush=True)
            finally:
                stop(proc)
    line = b"the quick brown fox jumps over the lazy dog 0123456789\n"
    args.body_size_note = f"{args.body_size}-byte page"
    return (line * (args.body_size // len(line) + 1))[:args.body_size]


def main() -> int:
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    args = parse_args()
    checker_run.enter_network_namespace()
    checker_run.bring_up_loopback()
    if os.environ.get("NETCOURSE_NETNS") != "1":
        why = "NETCOURSE_NO_NETNS is set" if os.environ.get("NETCOURSE_NO_NETNS") \
            else os.environ.get("NETCOURSE_NETNS", "")[6:]
        print(f"[handshake] no private network namespace ({why}): capturing on the shared "
              "loopback, filtered by port", flush=True)

    nginx = nginx_binary()
    no_nginx = (f"bench_handshake: nginx is not installed, so there is nothing to compare with "
                f"(Debian package {NGINX_PACKAGE}: `make deps` as root installs it, or "
                f"sudo apt-get install {NGINX_PACKAGE})")
    if nginx is None:
        print(no_nginx, file=sys.stderr, flush=True)
    server_best, client_best = shlex.split(args.server_best), shlex.split(args.client_best)
    servers = [Server("httpd", "course"), Server(f"httpd {' '.join(server_best)}", "course", server_best),
               Server("nginx deferred+nopush+sendfile", "nginx")]
    clients = [Client("http_get", "course"), Client(f"http_get {' '.join(client_best)}", "course",
                                                    client_best), Client("curl --http1.0", "curl")]
    rows = {(s.label, c.label): Row(s, c) for s in servers for c in clients}

    missing_httpd, missing_get = course_missing("httpd", args.course_dir), course_missing("http_get", args.course_dir)
    if missing_httpd:
        print(f"[handshake] lesson 15's httpd: {missing_httpd}; its rows are skipped", flush=True)
    if missing_get:
        print(f"[handshake] lesson 15's http_get: {missing_get}; its rows are skipped", flush=True)
    no_curl = shutil.which("curl") is None
    for (s_label, c_label), row in rows.items():
        if row.server.kind == "course" and missing_httpd:
            row.problem = missing_httpd
        elif row.server.kind == "nginx" and nginx is None:
            row.problem = f"nginx is not installed (Debian package {NGINX_PACKAGE})"
        elif row.client.kind == "course" and missing_get:
            row.problem = missing_get
        elif row.client.kind == "curl" and no_curl:
            row.problem = "curl is not installed (Debian package curl)"

    started = time.monotonic()
    failed = nginx is None
    strace_lines = []
    with tempfile.TemporaryDirectory(prefix="netcourse-handshake-") as tmp:
        work = pathlib.Path(tmp)
        try:
            body = page_body(args)
            for server in servers:
                if any(not rows[(server.label, c.label)].problem for c in clients):
                    measure_server(server, clients, rows, args, work, body)
            if nginx and not args.no_strace:
                client = clients[1] if not missing_get else clients[2]
                print(f"[handshake] nginx under strace, serving {client.label} once ...", flush=True)
                strace_lines = strace_nginx(client, args, work, body)
        except CannotCheck as e:
            print("bench_handshake: " + "\n  ".join(e.lines()), file=sys.stderr)
            return 1
        finally:
            kill_all()
    print_table(servers, clients, rows, args)
    lines = verdicts(servers, clients, rows)
    if lines:
        print()
        print("The course's httpd with its best switches against nginx, same client (most packets "
              "of ours vs fewest of nginx's):")
        print("\n".join(lines))
    if strace_lines:
        print()
        print(f"nginx serving one request: strace -f -e trace={STRACE_CALLS}")
        print("(failed accept4()s and the closes of files other than connections left out)")
        for line in strace_lines[:30]:
            print("  " + line)
        if len(strace_lines) > 30:
            print(f"  … {len(strace_lines) - 30} more")
    print(f"\n({time.monotonic() - started:.1f} s)")
    if nginx is None:
        print(no_nginx, file=sys.stderr)
    for row in rows.values():
        skipped = row.problem.startswith(("not built yet", "nginx is not", "curl is not"))
        failed |= bool(row.problem) and not skipped
    return 1 if failed else 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except KeyboardInterrupt:
        kill_all()
        print("\nbench_handshake: interrupted; every process was stopped", file=sys.stderr)
        sys.exit(130)
