"""Unit tests of the harness's own logic: diffs, strace parsing, packet kinds, cleanup."""
import filecmp
import os
import pathlib
import shutil
import time

from checker.harness import T, procfs, run, spawn, start_server
from checker.harness.procs import kill_group
from checker.harness import target as target_module
from checker.harness.capture import Packet
from checker.harness.report import caret_diff, first_difference, show_bytes
from checker.harness.strace import parse


def test_caret_points_at_first_difference():
    expected, got, caret = caret_diff(b"EXCHANGED\r\n", b"ERROR\r\n")
    assert expected == "expected  EXCHANGED\\r\\n"
    assert got == "got       ERROR\\r\\n"
    assert caret.index("^") == len("expected  E")
    assert "byte 1" in caret


def test_caret_counts_escapes_as_their_printed_width():
    _, _, caret = caret_diff(b"a\r\nb", b"a\r\nc")
    assert caret.index("^") == len("expected  a\\r\\n")


def test_first_difference_of_a_prefix_is_its_end():
    assert first_difference(b"abc", b"ab") == 2
    assert first_difference(b"abc", b"abc") is None


def test_show_bytes_escapes_and_truncates():
    assert show_bytes(b"\x00\xff\n") == "\\x00\\xff\\n"
    assert show_bytes(b"x" * 100, limit=10).endswith("… (100 bytes in all)")


def test_strace_lines_are_parsed_with_errors_and_resumes():
    text = ("101 socket(AF_INET, SOCK_STREAM, IPPROTO_IP) = 3\n"
            "101 connect(3, {sa_family=AF_INET}, 16) = -1 ECONNREFUSED (Connection refused)\n"
            "101 recvfrom(3,  <unfinished ...>\n"
            "102 read(0, \"\", 1) = 0\n"
            "101 <... recvfrom resumed>\"abc\", 10, 0, NULL, NULL) = 3\n")
    calls = parse(text)
    assert [c.name for c in calls] == ["socket", "connect", "read", "recvfrom"]
    assert calls[1].result == -1 and calls[1].error == "ECONNREFUSED"
    assert calls[3].result == 3


def test_packet_kinds():
    p = lambda **f: Packet(1, 5000, 80, f.get("syn", False), f.get("ack", False), f.get("fin", False),
                           f.get("rst", False), f.get("length", 0))
    assert p(syn=True).kind == "SYN"
    assert p(syn=True, ack=True).kind == "SYN-ACK"
    assert p(ack=True).kind == "ACK"
    assert p(ack=True, length=5).kind == "DATA"
    assert p(ack=True, fin=True).kind == "FIN"
    assert p(ack=True, fin=True, length=5).describe(80).endswith("DATA 5 bytes +FIN")
    assert p(rst=True, ack=True).kind == "RST"


def test_run_kills_the_whole_group_on_timeout():
    result = run(["sh", "-c", "sleep 60 & echo $!; wait"], timeout=T(1))
    assert result.timed_out
    child = int(result.stdout.split()[0])
    time.sleep(0.1)
    assert not os.path.exists(f"/proc/{child}") or open(f"/proc/{child}/stat").read().split()[2] == "Z"


def test_silent_server_is_diagnosed_and_killed(tmp_path):
    script = tmp_path / "silent-server"
    pidfile = tmp_path / "pid"
    script.write_text(f"#!/bin/sh\necho $$ > {pidfile}\nexec sleep 60\n")
    script.chmod(0o755)
    try:
        start_server(script, timeout=T(0.5))
    except AssertionError as failure:
        assert "printed nothing" in str(failure)
    else:
        raise AssertionError("a server without a port line was accepted")
    pid = int(pidfile.read_text())
    assert not os.path.exists(f"/proc/{pid}"), "the silent server was left running"


def test_server_that_exits_is_diagnosed():
    try:
        start_server("/bin/false", timeout=T(5))
    except AssertionError as failure:
        assert "exited before it printed its port" in str(failure)
    else:
        raise AssertionError("a server that exited was accepted")



ROOT = pathlib.Path(__file__).resolve().parents[2]


def tree_with(name: str, lesson: str, file: str, change) -> str:
    """A copy of a lesson's solution under build/src/mutants/NAME/ (the Makefile builds what is
    there), one file changed; its root."""
    src_root = f"build/src/mutants/selftest-{name}"
    out = ROOT / src_root / lesson
    shutil.rmtree(out, ignore_errors=True)
    shutil.copytree(ROOT / "solutions" / lesson, out)
    (out / file).write_text(change((out / file).read_text()))
    return src_root


def programs_copied(monkeypatch, src_root: str, lesson: str) -> list[str]:
    """Builds the tree; returns the programs that got the solution's binary, not a compiler run."""
    copied = []
    real_copy = target_module.shutil.copyfile

    def spy(source, destination, **options):
        if str(destination).endswith(".tmp"):   # the build's copies (copytree's are not)
            copied.append(pathlib.Path(destination).name.removesuffix(".tmp"))
        return real_copy(source, destination, **options)
    monkeypatch.setattr(target_module.shutil, "copyfile", spy)
    target_module.Target(lesson, src_root, src_root.replace("build/src/", "build/"), "test").build()
    return sorted(copied)


def test_an_unchanged_program_is_the_solutions_binary_and_a_changed_one_is_compiled(monkeypatch):
    src_root = tree_with("reuse", "19-udp", "udp_lookup.cc", lambda text: text.replace('"usage"', '"Usage"', 1))
    assert programs_copied(monkeypatch, src_root, "19-udp") == ["mcast_recv", "mcast_send", "udp_server"]
    built = ROOT / src_root.replace("build/src/", "build/") / "19-udp"
    solution = ROOT / "build" / "solutions" / "19-udp"
    assert filecmp.cmp(built / "udp_server", solution / "udp_server", shallow=False)
    assert not filecmp.cmp(built / "udp_lookup", solution / "udp_lookup", shallow=False)


def test_a_changed_header_or_part_means_every_program_is_compiled(monkeypatch):
    header = tree_with("reuse-header", "18-unix-sockets", "shared_table.h", lambda text: text + "\n// changed\n")
    assert programs_copied(monkeypatch, header, "18-unix-sockets") == []
    part = tree_with("reuse-part", "18-unix-sockets", "shared_table.cc", lambda text: text + "\n// changed\n")
    assert programs_copied(monkeypatch, part, "18-unix-sockets") == []


def test_a_program_with_parts_depends_on_every_header_its_sources_include(monkeypatch):
    """gcc writes one NAME.d per output, so a program compiled from several sources once kept
    only the last source's includes, and a header only the main source includes could
    change without the program being rebuilt."""
    src_root = tree_with("deps", "13-select", "weensydb.cc", lambda text: text + "\n// changed\n")
    assert programs_copied(monkeypatch, src_root, "13-select") == []
    program = ROOT / src_root.replace("build/src/", "build/") / "13-select" / "weensydb"
    deps = (program.parent / "weensydb.d").read_text()
    assert "common/event_loop.h" in deps, f"weensydb.cc's includes are missing from its .d file:\n{deps}"
    assert "common/poller.h" in deps, f"poller.cc's includes are missing from weensydb.d:\n{deps}"

def test_a_loop_that_never_sleeps_wants_a_core_on_a_busy_machine():
    """The idle-CPU checks judge what a program wants, not what it got: in CI, five lesson
    runs share two cores, and a polling loop once got only 28% of one, so a check that read
    the CPU time alone failed a right program (and would pass a wrong one)."""
    spin = ["sh", "-c", "while :; do :; done"]
    spinners = [spawn(spin) for _ in range(2 * (os.cpu_count() or 1) + 1)]
    sleeper = spawn(["sleep", "60"])
    napper = spawn(["/usr/bin/python3", "-c", "import time\nwhile True: time.sleep(0.01)"])
    try:
        busy = procfs.cpu_use(spinners[0].pid, seconds=0.5)
        idle = procfs.cpu_use(sleeper.pid, seconds=0.5)
        napping = procfs.cpu_use(napper.pid, seconds=0.5)
    finally:
        for proc in [*spinners, sleeper, napper]:
            kill_group(proc)
    assert busy.share < 0.8, f"the spinners did not crowd each other out: {busy}"
    assert busy.wanted > 0.9 and busy.busy(0.10) and busy.busy(0.3), busy
    assert "it was ready to run" in busy.words(), busy.words()
    assert idle.wanted < 0.05 and not idle.busy(0.10), idle
    # a 10 ms nap between tries is the pause the EMFILE check asks for, even on a busy machine
    assert not napping.busy(0.10), napping
