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


def label(p: Packet) -> str:
    """What a ladder row says of a packet: "SYN", "DATA 35 bytes", "DATA 84 bytes +FIN"."""
    return p.kind + (f" {p.length} byte{'s' if p.length != 1 else ''}" if p.length else "") + (
        " +FIN" if p.fin and p.kind != "FIN" else "")


def ladder(packets, server_port: int) -> list[str]:
    """One row per packet, the client on the left, the server on the right."""
    rows = ["  #  client                                     server"]
    for n, p in enumerate(packets, 1):
        what = label(p)
        if p.from_client(server_port):
            rows.append(f"{n:>3}  {what:<20} ─────────────────▶")
        else:
            rows.append(f"{n:>3}  {'':<20} ◀─────────────────  {what}")
    return rows


# ---- the same ladder as an SVG picture (make site) ---------------------------------

_COLOURS = {"SYN": "#1565c0", "SYN-ACK": "#1565c0", "RST": "#c62828", "DATA": "#2e7d32",
            "FIN": "#ef6c00", "ACK": "#616161"}


def ladder_svg(packets, server_port: int, title: str = "") -> str:
    """The rows of ladder() drawn as a sequence diagram: the client's time line on the left,
    the server's on the right, one sloping arrow per packet, labelled as in the text. Plain
    SVG with width and height, no script, no web font: it shows the same in any browser."""
    from xml.sax.saxutils import escape
    left, right, top, row = 150, 450, 56, 34
    height = top + row * len(packets) + 24
    out = [f'<svg xmlns="http://www.w3.org/2000/svg" width="600" height="{height}" '
           f'viewBox="0 0 600 {height}" font-family="sans-serif" font-size="13">',
           f"<title>{escape(title or 'packet ladder')}</title>",
           '<rect width="100%" height="100%" fill="white"/>',
           "<defs>" + "".join(  # one arrow head per colour (context-stroke is not everywhere yet)
               f'<marker id="head-{kind}" viewBox="0 0 10 10" refX="10" refY="5" markerWidth="8" '
               f'markerHeight="8" orient="auto"><path d="M0,0 L10,5 L0,10 z" fill="{colour}"/>'
               '</marker>' for kind, colour in _COLOURS.items()) + "</defs>",
           f'<text x="{left}" y="24" text-anchor="middle" font-weight="bold">client</text>',
           f'<text x="{right}" y="24" text-anchor="middle" font-weight="bold">server</text>']
    for x in (left, right):
        out.append(f'<line x1="{x}" y1="34" x2="{x}" y2="{height - 12}" stroke="#9e9e9e" '
                   'stroke-width="2"/>')
    for n, p in enumerate(packets, 1):
        y = top + row * (n - 1)
        colour = _COLOURS[p.kind]
        start, end = (left, right) if p.from_client(server_port) else (right, left)
        out.append(f'<text x="24" y="{y + 14}" fill="#757575">{n}</text>')
        out.append(f'<line x1="{start}" y1="{y}" x2="{end}" y2="{y + 18}" stroke="{colour}" '
                   'stroke-width="2" ' f'marker-end="url(#head-{p.kind})"/>')
        out.append(f'<text x="{(left + right) // 2}" y="{y + 4}" text-anchor="middle" '
                   f'fill="{colour}">{escape(label(p))}</text>')
    out.append("</svg>")
    return "\n".join(out) + "\n"


def reference(name: str):
    """The packets of captures/NAME.pcap and its server port (the port of its first SYN's target)."""
    packets = read_tcp_packets(CAPTURES / f"{name}.pcap")
    port = packets[0].dst_port if packets else 0
    return packets, port


def reference_drawn(name: str):
    """The packets captures/NAME.txt draws, from captures/NAME.pcap: retransmissions left out,
    and the bare ACKs after the handshake too when the .txt's header says so (make captures
    writes that line). Returns (packets, server port)."""
    packets, port = reference(name)
    header = [row for row in (CAPTURES / f"{name}.txt").read_text().splitlines() if row.startswith("#")]
    shown = without_retransmissions(packets)
    if any("bare ACKs after the handshake" in row for row in header):
        shown = without_late_acks(shown)
    return shown, port


def reference_steps(name: str) -> list[str]:
    packets, port = reference(name)
    return steps(packets, port)
