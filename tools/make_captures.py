#!/usr/bin/env python3
"""Records the reference packet captures in captures/ from the solutions.

    make captures

Each capture is taken the way the checker takes them (its own network
namespace, a probe barrier around the traffic), then saved as a .pcap for
Wireshark/tshark and a .txt with tshark's one-line summaries, for readers
without either. The probe packets (UDP to port 9) are filtered out.
Lesson 15's .txt files are packet ladders instead (who sends what, in order,
no timestamps): its checks compare a capture with these references by kind.
"""
import os
import pathlib
import shutil
import subprocess
import sys

ROOT = pathlib.Path(__file__).resolve().parents[1]

from checker import run as checker_run  # noqa: E402  (the checker's namespace set-up)
from checker.harness import Capture, LineClient, closed_port, free_port, start_server  # noqa: E402
from checker.harness.capture import read_tcp_packets  # noqa: E402
from checker.harness.client import connect  # noqa: E402
from checker.harness.procs import kill_all, run  # noqa: E402
from checker.harness.target import tool  # noqa: E402
from checker.checks.ladder import ladder  # noqa: E402

OUT = ROOT / "captures"


def write_pcap(cap: Capture, pcap: pathlib.Path, port: int):
    """The captured packets of one port, as a .pcap file (the capture is in memory)."""
    subprocess.run(["tshark", "-r", "-", "-Y", f"tcp.port == {port}", "-w", str(pcap)],
                   input=cap.pcap, check=True, capture_output=True)


def save(cap: Capture, name: str, port: int, about: str):
    pcap = OUT / f"{name}.pcap"
    write_pcap(cap, pcap, port)
    lines = subprocess.run(["tshark", "-r", str(pcap)], capture_output=True, text=True).stdout
    (OUT / f"{name}.txt").write_text(f"# {about}\n# tshark -r captures/{name}.pcap\n{lines}")
    print(f"wrote captures/{name}.pcap and .txt ({len(lines.splitlines())} packets)")


def connect_before_listen():
    with closed_port() as port:
        with Capture([port]) as cap:
            try:
                connect(port).close()
            except ConnectionRefusedError:
                pass
    save(cap, "02-connect-before-listen", port,
         "connect() to a bound port nobody listens on: the SYN is answered by RST (ECONNREFUSED)")


def echo_session():
    port = free_port()
    server = ROOT / "build/solutions/02-server-syscalls/echo_server"
    with start_server(server, port=port), Capture([port]) as cap:
        with LineClient(port) as client:
            client.send(b"ping\n")
            client.read_exactly(5)
            client.shutdown_write()
            client.read_until_eof()
    save(cap, "02-echo-session", port,
         "lesson 02's echo server: handshake, `ping\\n` and its echo, then a FIN from each side")


def dribble():
    with start_server(tool("course-httpd")) as httpd, Capture([httpd.port]) as cap:
        run([ROOT / "build/solutions/01-raw-client/http_get", "127.0.0.1", httpd.port, "/dribble"],
            timeout=30)
    save(cap, "01-dribble", httpd.port,
         "lesson 01's client fetching /dribble: the body arrives one byte per segment")


# ---- lesson 15: one HTTP transaction, tuned in different ways ------------------------

LESSON_15 = ROOT / "build/solutions/15-handshake-tuning"
LESSON_15_CASES = [
    ("15-plain", [], [],
     "no option: SYN, SYN-ACK, a bare ACK, the request; header and body in two segments"),
    ("15-client-defer-accept", [], ["--defer-accept"],
     "http_get --defer-accept: no bare ACK, the handshake's ACK rides on the request"),
    ("15-client-no-quickack", [], ["--no-quickack"],
     "http_get --no-quickack: the handshake's ACK is delayed, and rides on the request"),
    ("15-server-cork", ["--cork"], [],
     "httpd --cork: header and body leave in one segment, with the FIN"),
    ("15-server-nodelay", ["--nodelay"], [],
     "httpd --nodelay: no Nagle, and still one segment per write(): two"),
    ("15-all-tuned", ["--defer-accept", "--cork", "--no-quickack"], ["--defer-accept", "--no-quickack"],
     "everything combined: the whole transaction in 6 packets, TCP's floor"),
]


def save_ladder(cap: Capture, name: str, port: int, about: str, command: str):
    """The .pcap, and beside it a ladder of packet kinds (no times, ports or numbers
    that change from run to run, so `make captures` rewrites the same text)."""
    pcap = OUT / f"{name}.pcap"
    write_pcap(cap, pcap, port)
    packets = read_tcp_packets(pcap)
    rows = ladder(packets, port)
    (OUT / f"{name}.txt").write_text(f"# {about}\n# {command}\n# {len(packets)} packets "
                                     f"(tshark -r captures/{name}.pcap for the details)\n"
                                     + "\n".join(rows) + "\n")
    print(f"wrote captures/{name}.pcap and .txt ({len(packets)} packets)")


def lesson_15():
    for name, server_args, client_args, about in LESSON_15_CASES:
        port = free_port()
        with start_server(LESSON_15 / "httpd", args=server_args, port=port), Capture([port]) as cap:
            result = run([LESSON_15 / "http_get", *client_args, "127.0.0.1", port, "/"], timeout=30)
        if result.returncode != 0:
            sys.exit(f"make_captures: http_get failed for {name}: {result.stderr.decode(errors='replace')}")
        command = " ".join(["httpd -p PORT", *server_args, "·", "http_get", *client_args, "127.0.0.1 PORT /"])
        save_ladder(cap, name, port, about, command)


def main():
    checker_run.enter_network_namespace()
    checker_run.bring_up_loopback()
    if shutil.which("tshark") is None:
        sys.exit("make_captures: tshark is missing (make deps)")
    subprocess.run(["make", "-s", "programs"], cwd=ROOT, check=True)
    OUT.mkdir(exist_ok=True)
    try:
        connect_before_listen()
        echo_session()
        dribble()
        lesson_15()
    finally:
        kill_all()


if __name__ == "__main__":
    os.chdir(ROOT)
    main()
