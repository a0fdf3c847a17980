"""The reference captures in captures/ (made by `make captures`) show what the lessons teach."""
import pathlib

from checker.harness.capture import read_tcp_packets

CAPTURES = pathlib.Path(__file__).resolve().parents[2] / "captures"


def kinds(name):
    return [p.kind for p in read_tcp_packets(CAPTURES / f"{name}.pcap")]


def test_connect_before_listen_is_syn_then_rst():
    assert kinds("02-connect-before-listen") == ["SYN", "RST"]


def test_echo_session_is_handshake_data_and_two_fins():
    packets = read_tcp_packets(CAPTURES / "02-echo-session.pcap")
    assert [p.kind for p in packets[:3]] == ["SYN", "SYN-ACK", "ACK"]
    assert [p.length for p in packets if p.length] == [5, 5]
    assert sum(p.fin for p in packets) == 2


def test_dribble_arrives_one_byte_per_segment():
    one_byte = [p for p in read_tcp_packets(CAPTURES / "01-dribble.pcap") if p.length == 1]
    assert len(one_byte) > 50


def test_every_ladder_is_drawn_from_its_capture():
    """Each committed ladder (captures/*.txt) is exactly what its .pcap draws: the .txt
    files are made by `make captures`, never edited by hand."""
    from checker.checks.ladder import ladder, reference, without_late_acks, without_retransmissions
    names = sorted(p.stem for p in CAPTURES.glob("*.pcap"))
    assert len(names) == 10, names
    for name in names:
        packets, port = reference(name)
        text = (CAPTURES / f"{name}.txt").read_text().splitlines()
        shown = without_retransmissions(packets)
        if any("bare ACKs after the handshake" in row for row in text if row.startswith("#")):
            shown = without_late_acks(shown)
        rows = [row for row in text if not row.startswith("#")]
        assert rows == ladder(shown, port), f"captures/{name}.txt does not match its .pcap"


def test_the_svg_ladder_draws_the_rows_of_the_text_one():
    """make site's picture of a ladder: one arrow per row of the .txt, in the same
    direction, with the same words; and an SVG a browser can size (width and height)."""
    import xml.etree.ElementTree as ET
    from checker.checks.ladder import label, ladder_svg, reference_drawn
    packets, port = reference_drawn("15-all-tuned")
    svg = ET.fromstring(ladder_svg(packets, port, "15-all-tuned"))
    ns = "{http://www.w3.org/2000/svg}"
    assert int(svg.get("width")) > 0 and int(svg.get("height")) > 0
    arrows = [l for l in svg.iter(ns + "line") if l.get("marker-end")]
    assert len(arrows) == len(packets) == 6
    for arrow, p in zip(arrows, packets):
        rightwards = float(arrow.get("x2")) > float(arrow.get("x1"))
        assert rightwards == p.from_client(port)
    words = [t.text for t in svg.iter(ns + "text")]
    assert all(label(p) in words for p in packets) and "DATA 446 bytes +FIN" in words


def test_a_retransmission_is_not_part_of_the_ladder():
    from checker.checks.ladder import without_retransmissions
    from checker.harness.capture import Packet
    data = Packet(6, 80, 5000, False, True, True, False, 362, seq=85)
    again = Packet(7, 80, 5000, False, True, True, False, 362, seq=85)
    ack = Packet(8, 5000, 80, False, True, False, False, 0, seq=62)
    assert without_retransmissions([data, again, ack]) == [data, ack]
