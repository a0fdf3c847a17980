"""Packet ladders: a TCP exchange drawn as who sends what, in order.

Lesson 15's checks and `make captures` share this: the checks compare a
capture with the reference in captures/ by (direction, kind), and the
reference's .txt shows the same ladder. No timestamps, ports or sequence
numbers, so the same exchange always draws the same ladder.
"""
import pathlib

from checker.harness.capture import Packet, read_tcp_packets

CAPTURES = pathlib.Path(__file__).resolve().parents[2] / "captures"


def step(p: Packet, server_port: int) -> str:
    """e.g. "→ DATA" (client to server) or "← DATA+FIN" (server to client)."""
    arrow = "→" if p.from_client(server_port) else "←"
    return f"{arrow} {p.kind}" + ("+FIN" if p.fin and p.kind != "FIN" else "")


def steps(packets, server_port: int) -> list[str]:
    return [step(p, server_port) for p in packets]


def line(packets, server_port: int) -> str:
    """The steps on one line: "→ SYN  ← SYN-ACK  → ACK  → DATA ..." """
    return "  ".join(steps(packets, server_port)) or "no packets"


def without_retransmissions(packets) -> list:
    """The packets less the segments that repeat one already sent (same direction, sequence
    number, length and FIN): a retransmission is the machine's accident, not the lesson's."""
    seen, kept = set(), []
    for p in packets:
        key = (p.src_port, p.seq, p.length, p.fin, p.syn)
        if (p.length or p.fin or p.syn) and key in seen:
            continue
        seen.add(key)
        kept.append(p)
    return kept


def without_late_acks(packets) -> list:
    """The packets less the bare ACKs after the handshake's: when those leave depends on
    timers and scheduling, so a ladder that keeps them changes from run to run."""
    return [p for n, p in enumerate(packets) if n < 3 or p.kind != "ACK" or p.length or p.fin]


def ladder(packets, server_port: int) -> list[str]:
    """One row per packet, the client on the left, the server on the right."""
    rows = ["  #  client                                     server"]
    for n, p in enumerate(packets, 1):
        what = p.kind + (f" {p.length} byte{'s' if p.length != 1 else ''}" if p.length else "") + (
            " +FIN" if p.fin and p.kind != "FIN" else "")
        if p.from_client(server_port):
            rows.append(f"{n:>3}  {what:<20} ─────────────────▶")
        else:
            rows.append(f"{n:>3}  {'':<20} ◀─────────────────  {what}")
    return rows


def reference(name: str):
    """The packets of captures/NAME.pcap and its server port (the port of its first SYN's target)."""
    packets = read_tcp_packets(CAPTURES / f"{name}.pcap")
    port = packets[0].dst_port if packets else 0
    return packets, port


def reference_steps(name: str) -> list[str]:
    packets, port = reference(name)
    return steps(packets, port)
