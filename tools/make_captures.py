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

from checker import run as checker_run   # the checker's network namespace set-up
from checker.harness import Capture, LineClient, T, closed_port, free_port, start_server
from checker.harness.capture import read_tcp_packets
from checker.harness.client import connect
from checker.harness.procs import kill_all, run
from checker.harness.target import tool
from checker.checks.ladder import ladder, without_late_acks, without_retransmissions

OUT = ROOT / "captures"


def connect_before_listen():
    with closed_port() as port:
        with Capture([port]) as cap:
            try:
                connect(port).close()
            except ConnectionRefusedError:
                pass
    save_ladder(cap, "02-connect-before-listen", port,
                "connect() to a bound port nobody listens on: the SYN is answered by RST (ECONNREFUSED)",
                "connect() to 127.0.0.1 PORT, where nothing listens")


def echo_session():
    port = free_port()
    server = ROOT / "build/solutions/02-server-syscalls/echo_server"
    with start_server(server, port=port), Capture([port]) as cap:
        with LineClient(port) as client:
            client.send(b"ping\n")
            client.read_exactly(5)
            client.shutdown_write()
            client.read_until_eof()
    save_ladder(cap, "02-echo-session", port,
                "lesson 02's echo server: handshake, `ping\\n` and its echo, then a FIN from each side",
                "echo_server -p PORT · send ping\\n, read the echo, shutdown(SHUT_WR), read to the end",
                late_acks=False)


def dribble():
    with start_server(tool("course-httpd")) as httpd, Capture([httpd.port]) as cap:
        run([ROOT / "build/solutions/01-raw-client/http_get", "127.0.0.1", httpd.port, "/dribble"],
            timeout=T(30))
    save_ladder(cap, "01-dribble", httpd.port,
                "lesson 01's client fetching /dribble: the body arrives one byte per segment",
                "course-httpd -p PORT · http_get 127.0.0.1 PORT /dribble", late_acks=False)


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
     "everything combined: the whole transaction in 6 packets (5 if the client sent its FIN with the request)"),
    ("15-close-early", ["--defer-accept", "--cork", "--no-quickack"],
     ["--defer-accept", "--no-quickack", "--close-early"],
     "going further: the client corks its request and shuts its side down after it: 5 packets"),
]


def save_ladder(cap: Capture, name: str, port: int, about: str, command: str, late_acks=True):
    """captures/NAME.pcap, and beside it NAME.txt, a ladder of packet kinds: no times, ports
    or numbers that change from run to run. When the ladder is the one already there, both
    files are left as they are (a new .pcap differs in its timestamps alone), so running
    `make captures` again changes nothing that git sees."""
    fresh = subprocess.run(["tshark", "-r", "-", "-Y", f"tcp.port == {port}", "-w", "-"],
                           input=cap.pcap, check=True, capture_output=True, timeout=T(60)).stdout
    packets = read_tcp_packets(fresh)
    shown = without_retransmissions(packets)
    shown = shown if late_acks else without_late_acks(shown)
    header = [f"# {about}", f"# {command}",
              f"# {len(packets)} packets (tshark -r captures/{name}.pcap for the details)"]
    if len(shown) < len(packets):
        header.append(f"# {len(shown)} drawn: " + ("the bare ACKs after the handshake and " if not late_acks
                                                    else "") + "retransmissions are left out, "
                      "as they vary from run to run")
    text = "\n".join(header + ladder(shown, port)) + "\n"
    txt, pcap = OUT / f"{name}.txt", OUT / f"{name}.pcap"
    old_rows = [r for r in txt.read_text().splitlines() if not r.startswith("#")] if txt.exists() else None
    if old_rows == ladder(shown, port) and pcap.exists():
        old_header = [r for r in txt.read_text().splitlines() if r.startswith("# ")][:2]
        if old_header != header[:2]:   # the same ladder, described anew
            txt.write_text("\n".join(header[:2] + txt.read_text().splitlines()[2:]) + "\n")
        print(f"kept captures/{name}.pcap: the same ladder ({len(packets)} packets)")
        return
    pcap.write_bytes(fresh)
    txt.write_text(text)
    print(f"wrote captures/{name}.pcap and .txt ({len(packets)} packets)")


def lesson_15():
    for name, server_args, client_args, about in LESSON_15_CASES:
        port = free_port()
        with start_server(LESSON_15 / "httpd", args=server_args, port=port), Capture([port]) as cap:
            result = run([LESSON_15 / "http_get", *client_args, "127.0.0.1", port, "/"], timeout=T(30))
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
