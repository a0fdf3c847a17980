"""The demo's packet pane: a live capture of one TCP port, drawn as a ladder.

    python3 -m tools.demo.packets PORT

runs `tshark -l -i lo -f 'tcp port PORT or udp dst port 9'` and prints one ladder row per
packet, the client on the left, the server on the right, in the words the checker uses
(SYN, SYN-ACK, DATA 35 bytes, FIN, RST: checker/harness/capture.py's Packet.kind).

tshark misses the packets of its first second or so (docs/instructor-guide.md). So, like the
checker's Capture, this sends a UDP probe to 127.0.0.1:9 every 50 ms until one comes back
through the capture, and only then prints "live": nothing sent after that line is missed.
"""
import os
import signal
import socket
import subprocess
import sys
import threading

from checker.harness.capture import PROBE_PORT, Packet

FIELDS = ["frame.number", "tcp.srcport", "tcp.dstport", "tcp.flags.syn", "tcp.flags.ack",
          "tcp.flags.fin", "tcp.flags.reset", "tcp.len", "udp.dstport"]
LIVE = "live: every packet from here on is shown"


def row(n: int, p: Packet, server_port: int) -> str:
    """ "  3  DATA 35 bytes    ────────▶" (client to server), or the mirror: narrow enough
    for half a projected screen."""
    what = p.kind + (f" {p.length} byte{'s' if p.length != 1 else ''}" if p.length else "") + (
        " +FIN" if p.fin and p.kind != "FIN" else "")
    if p.from_client(server_port):
        return f"{n:>3}  {what:<16} ────────▶"
    return f"{n:>3}  {'':<16} ◀────────  {what}"


def parse(line: str):
    """A Packet, "probe", or None (a line that is neither)."""
    v = line.rstrip("\n").split(",")
    if len(v) != len(FIELDS):
        return None
    if not v[1]:
        return "probe" if v[8] == str(PROBE_PORT) else None
    flag = lambda s: s in ("1", "True")
    return Packet(int(v[0]), int(v[1]), int(v[2]), flag(v[3]), flag(v[4]), flag(v[5]), flag(v[6]),
                  int(v[7] or 0))


def probe_until(seen: threading.Event) -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as udp:
        while not seen.wait(0.05):
            udp.sendto(b"netcourse-demo-probe", ("127.0.0.1", PROBE_PORT))


def main() -> int:
    port = int(sys.argv[1])
    signal.signal(signal.SIGINT, signal.SIG_DFL)      # Ctrl-C: end quietly, with tshark
    cmd = ["tshark", "-l", "-n", "-i", "lo", "-f", f"tcp port {port} or udp dst port {PROBE_PORT}",
           "-T", "fields", "-E", "separator=,"]
    for f in FIELDS:
        cmd += ["-e", f]
    print(f"capturing tcp port {port} on lo ({' '.join(cmd[:6])} …)", flush=True)
    tshark = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    live = threading.Event()
    threading.Thread(target=probe_until, args=(live,), daemon=True).start()
    n = connection = 0
    for line in tshark.stdout:
        p = parse(line)
        if p == "probe":
            if not live.is_set():
                live.set()
                print(f"{LIVE}\n  #  client                      server", flush=True)
        elif p is not None and live.is_set():
            if p.kind == "SYN" and p.from_client(port):     # a new connection: a new ladder
                connection += 1
                n = 0
                print(f"── connection {connection} " + "─" * 24, flush=True)
            n += 1
            print(row(n, p, port), flush=True)
    tshark.wait()
    print(f"tshark ended (exit status {tshark.returncode}): is dumpcap allowed to capture here?",
          file=sys.stderr)
    return 1


if __name__ == "__main__":
    try:
        sys.exit(main())
    except BrokenPipeError:
        os._exit(0)
