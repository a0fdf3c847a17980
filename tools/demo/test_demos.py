"""make test-demos: every instructor demo run headless, and what the room must see, checked.

Each demo is started detached (tmux at a fixed size, 200x60), in its own namespaces; the
test then does what the instructor does: at each step it checks that the command was typed
into its pane, presses the step's key there (tmux send-keys), and polls the panes
(capture-pane, with a deadline) for what the step's `see` says the room must see, and for
the absence of what `unseen` says it must not see yet (tools/demo/lessons.py). Some points
get a closer look here:

- lesson 08: the owner gdb prints for bucket 140's mutex is the LWP of a thread whose stack
  is at do_exch's second lock() (the double lock);
- lesson 15: the tuned transaction's ladder is captures/15-all-tuned's, packet for packet.

Steps after the last one that has something to check are typed but not run. When the demo
ends, no process that it started may be left (each carries NETCOURSE_DEMO in its
environment), and some must have been running before.
"""
import os
import pty
import re
import signal
import socket

import pytest

from checker.checks import ladder
from checker.harness.waiting import wait_until
from tools.demo.__main__ import build, go_to, open_demo
from tools.demo.lessons import DEMOS
from tools.demo import session as session_module
from tools.demo.session import ROOT, Session


def free_port() -> int:
    """A port free on this machine too, should the demo find no namespace to run in."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def pattern(text: str, port: int):
    return re.compile(text.replace("{port}", str(port)))


def run_steps(demo, session: Session, port: int) -> None:
    checked = [n for n, s in enumerate(demo.steps, 1) if s.see or s.unseen]
    last = max(checked, default=0)
    for n, step in enumerate(demo.steps, 1):
        if n > 1:
            go_to(session, demo, n)
        if step.type:
            typed = demo.fill(step.type, port)
            assert session.wait_for(step.pane, typed, 10, "the typed command"), \
                f"step {n}: {typed!r} was not typed into pane {step.pane}:\n{session.text(step.pane)}"
        if n > last:
            continue
        session.press(step.pane, step.press)
        look = step.look or step.pane
        if step.see:
            assert session.wait_for(look, pattern(step.see, port), step.wait, step.say), \
                f"lesson {demo.number}, step {n} ({step.say}): pane {look} never showed " \
                f"/{step.see}/:\n{session.text(look)}"
        if step.unseen:
            pane, text = step.unseen
            shown = session.text(pane)
            assert not pattern(text, port).search(shown), \
                f"lesson {demo.number}, step {n} ({step.say}): pane {pane} shows /{text}/:\n{shown}"
        CLOSER_LOOK.get((demo.number, n), lambda *_: None)(demo, session, port)


def double_lock_named(demo, session: Session, port: int) -> None:
    """gdb's owner of bucket_mutex[140] is a thread stuck at do_exch's second lock()."""
    text = session.text("inside")
    owner = re.search(r"\$1 = (\d+)", text).group(1)
    source = ROOT / "solutions" / demo.lesson.name / "weensydb.cc"
    line = next(n for n, l in enumerate(source.read_text().splitlines(), 1) if "bucket_mutex[b2].lock()" in l)
    threads = re.split(r"\n(?=Thread \d+ \()", text)
    mine = [t for t in threads if re.match(rf"Thread \d+ \(Thread 0x[0-9a-f]+ \(LWP {owner}\)", t)]
    assert mine, f"no thread with LWP {owner} (the mutex's owner) in gdb's output:\n{text}"
    assert re.search(rf"do_exch .*weensydb\.cc:{line}\b", mine[0]), \
        f"the owner, LWP {owner}, is not at weensydb.cc:{line} (the second lock()) in do_exch:\n{mine[0]}"


def ladder_of_last_connection(session: Session) -> list[str]:
    """The packets pane's last ladder, as ladder.steps() writes it ("→ SYN", "← DATA+FIN")."""
    rows = session.text("packets").split("── connection ")[-1].splitlines()[1:]
    got = []
    for row in rows:
        if "▶" in row:
            got.append("→ " + row.split()[1] + ("+FIN" if "+FIN" in row else ""))
        elif "◀" in row:
            got.append("← " + row.split("◀")[1].strip("─ ").split()[0] + ("+FIN" if "+FIN" in row else ""))
    return got


def whole_ladder(demo, session: Session, port: int) -> None:
    """Polls until the pane's last ladder is the reference's (its last ACK may come last)."""
    want = ladder.reference_steps("15-all-tuned")
    assert session.wait_for_shell("client", 10), "the client did not end"
    wait_until(lambda: ladder_of_last_connection(session) == want, 5, "the whole ladder", interval=0.05)
    got = ladder_of_last_connection(session)
    assert got == want, f"the tuned transaction's ladder is {got}, not captures/15-all-tuned's {want}"


CLOSER_LOOK = {("08", 3): double_lock_named, ("15", 2): whole_ladder}


@pytest.mark.parametrize("number", sorted(DEMOS))
def test_demo(number):
    demo = DEMOS[number]
    port = free_port()
    build(demo, port)
    session = Session(port)
    open_demo(demo, port, "200x60")
    try:
        run_steps(demo, session, port)
        running = session.processes()
        assert len(running) >= 3, f"the demo runs only {running}"
    finally:
        left = session.end()
    assert not left, f"processes were left after the demo ended (killed by pid): {left}"
    assert not session.processes()


def test_a_demo_without_namespaces(monkeypatch):
    """Where unshare is forbidden (some containers), a demo runs on the machine's own loopback:
    its steps still show their point, and ending it leaves nothing behind (no PID namespace
    kills the rest: end() hangs up each pane's process group)."""
    monkeypatch.setattr(session_module, "namespaces_prefix", lambda: [])
    demo, port = DEMOS["03"], free_port()
    build(demo, port)
    session = Session(port)
    open_demo(demo, port, "200x60")
    try:
        assert session.option("contained") == "no"
        run_steps(demo, session, port)
        assert len(session.processes()) >= 3, session.processes()
    finally:
        left = session.end()
    assert not left, f"processes were left after the demo ended (killed by pid): {left}"
    assert not session.processes()


def test_keys():
    """F6 types the next step and F12 ends everything, pressed in an attached client (a pty)."""
    demo, port = DEMOS["03"], free_port()
    build(demo, port)
    session = Session(port)
    open_demo(demo, port, "150x45")
    client = None
    try:
        client, fd = pty.fork()
        if client == 0:
            os.environ.pop("TMUX", None)
            os.environ["TERM"] = "xterm"
            os.execvp("tmux", ["tmux", "-S", session.socket, "attach", "-t", "demo"])
        assert wait_until(lambda: session.tmux("list-clients").strip(), 10, "the client to attach")
        os.write(fd, b"\x1b[17~")                                   # F6
        assert session.wait_for("client", demo.fill(demo.steps[1].type, port), 10, "step 2"), \
            f"F6 did not type step 2:\n{session.text('client')}"
        assert wait_until(lambda: session.option("step") == "2", 10, "F6's step number"), \
            f"after F6 the demo is at step {session.option('step')}, not 2"
        assert len(session.processes()) >= 3
        os.write(fd, b"\x1b[24~")                                   # F12
        assert wait_until(lambda: not session.processes(), 10, "the demo to end"), \
            f"F12 left {session.processes()}"
        assert not os.path.exists(session.socket)
        os.waitpid(client, 0)
        client = None
    finally:
        if client:
            os.kill(client, signal.SIGKILL)
            os.waitpid(client, 0)
        session.end()
