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


def test_lesson_15_ladders_are_drawn_from_their_captures():
    """Each committed ladder (captures/15-*.txt) is exactly what its .pcap draws: the .txt
    files are made by `make captures`, never edited by hand."""
    from checker.checks.ladder import ladder, reference
    names = sorted(p.stem for p in CAPTURES.glob("15-*.pcap"))
    assert len(names) == 6, names
    for name in names:
        packets, port = reference(name)
        text = (CAPTURES / f"{name}.txt").read_text().splitlines()
        rows = [row for row in text if not row.startswith("#")]
        assert rows == ladder(packets, port), f"captures/{name}.txt does not match its .pcap"
