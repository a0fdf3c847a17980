"""make demo-NN [PORT=6000] [STEP=n], make demo-end: see tools/demo/__init__.py.

    python3 -m tools.demo 08               build, open the layout, start the server, type step 1
    python3 -m tools.demo 08 --step 3      (demo running) type step 3 into its pane
    python3 -m tools.demo 08 --next        (demo running) type the next step: what F6 runs
    python3 -m tools.demo end              end the demo and everything it started
    python3 -m tools.demo 08 --detach --size 200x50     start it without attaching (self-test)
"""
import argparse
import os
import re
import shutil
import signal
import subprocess
import sys

from tools.demo.lessons import DEMOS
from tools.demo.packets import LIVE
from tools.demo.session import ROOT, Session

STEPS_PANE = "steps"


def build(demo, port: int) -> None:
    targets = [demo.fill(t, port) for t in demo.builds]
    print(f"[demo] make {' '.join(targets)}", flush=True)
    done = subprocess.run(["make", "-s", "--no-print-directory", *targets], cwd=ROOT)
    if done.returncode != 0:
        sys.exit(f"[demo] the build failed (exit status {done.returncode})")


def command(*args) -> str:
    """The shell command a key binding runs: this module again, from the repository's root."""
    quoted = " ".join(f"'{a}'" for a in args)
    return f"cd '{ROOT}' && '{sys.executable}' -m tools.demo {quoted}"


def run_in(session: Session, pane: str, text: str) -> None:
    session.type(pane, text)
    session.press(pane, "Enter")


def lay_out(session: Session, demo) -> None:
    """The server on the left, the other panes stacked on the right, the steps on top."""
    first = session.tmux("display-message", "-p", "-t", "demo", "#{pane_id}").strip()
    ids = [first]
    for n, _ in enumerate(demo.panes[1:]):
        flag = "-h" if n == 0 else "-v"
        ids.append(session.tmux("split-window", flag, "-d", "-t", ids[-1], "-c", ROOT,
                                "-P", "-F", "#{pane_id}").strip())
    width = int(session.tmux("display-message", "-p", "-t", "demo", "#{window_width}"))
    session.tmux("set-window-option", "-t", "demo", "main-pane-width", str(width // 2))
    session.tmux("select-layout", "-t", "demo", "main-vertical")
    steps = session.tmux("split-window", "-v", "-b", "-f", "-d", "-t", first, "-l",
                         str(min(len(demo.steps) + 3, 14)), "-P", "-F", "#{pane_id}").strip()
    for name, pane in [*zip(demo.panes, ids), (STEPS_PANE, steps)]:
        session.set_option("pane_" + name.replace(" ", "_"), pane)
        session.tmux("set-option", "-p", "-t", pane, "@name", name)


def bind_keys(session: Session, demo) -> None:
    port = str(session.port)
    for key in ("F6", "M-n"):
        session.tmux("bind-key", "-n", key, "run-shell", "-b", command(demo.number, "--port", port, "--next"))
    for key in ("F12", "M-q"):
        session.tmux("bind-key", "-n", key, "run-shell", "-b", command("end", "--port", port))


def open_demo(demo, port: int, size: str | None, first_step: int = 1) -> None:
    session = Session(port)
    width = height = None
    if size:
        width, height = (int(x) for x in size.split("x"))
    elif sys.stdout.isatty():
        width, height = shutil.get_terminal_size()
    how = session.start(width, height)
    try:
        session.set_option("demo", demo.number)
        lay_out(session, demo)
        bind_keys(session, demo)
        for name in demo.panes:       # a command typed before the shell's prompt is echoed twice
            if not session.wait_for(name, re.compile(r"\S"), 10, "the shell's prompt"):
                raise RuntimeError(f"the shell of pane {name} shows no prompt")
        if "packets" in demo.panes:
            run_in(session, "packets", f"/usr/bin/python3 -m tools.demo.packets {port}")
            if not session.wait_for("packets", LIVE, 30, "the capture to go live"):
                raise RuntimeError("the capture did not start: see the packets pane "
                                   f"(tmux -S {session.socket} attach)")
        if demo.server:
            run_in(session, "server", demo.fill(demo.server, port))
            if not session.wait_for("server", f"port {port}", 30, "the server to listen"):
                raise RuntimeError(f"the server did not start: see its pane (tmux -S {session.socket} attach)")
        go_to(session, demo, first_step)
    except BaseException:
        session.end()
        raise
    print(f"[demo] lesson {demo.number} on port {port}, in the {how}", flush=True)


def go_to(session: Session, demo, n: int) -> None:
    """Types step n into its pane (without Enter), selects that pane, shows the step list."""
    if not 1 <= n <= len(demo.steps):
        session.tmux("display-message", "-t", "demo", f"lesson {demo.number}: no step {n} "
                     f"(steps 1 to {len(demo.steps)}); F12 ends the demo")
        return
    step = demo.steps[n - 1]
    for key in step.first:
        session.press(step.pane, key)
        if key == "C-c":      # let the program go before typing into the shell
            session.wait_for_shell(step.pane, 10)
    if step.type:
        session.press(step.pane, "C-u")   # whatever was typed there and not run (readline and tty alike)
        session.type(step.pane, demo.fill(step.type, session.port))
    session.tmux("select-pane", "-t", session.pane(step.pane))
    session.set_option("step", n)
    show_steps(session, demo, n)


def show_steps(session: Session, demo, n: int) -> None:
    session.tmux("respawn-pane", "-k", "-t", session.pane(STEPS_PANE),
                 command(demo.number, "--port", str(session.port), "--show", str(n)))


def print_steps(demo, port: int, current: int) -> None:
    """The steps pane: the list, the current step marked, and the keys."""
    print(f"lesson {demo.number} · {demo.lesson.title} · port {port}")
    for n, step in enumerate(demo.steps, 1):
        mark = "▶" if n == current else ("✓" if n < current else " ")
        what = f"press {step.press}" if not step.type else "press Enter"
        print(f" {mark} {n:>2}  [{step.pane}] {step.say}" + (f"  ({what})" if n == current else ""))
    print("    F6 / Alt-n: next step   F12 / Alt-q: end   make demo-"
          f"{demo.number} STEP=n: go to step n", end="", flush=True)
    signal.pause()


def attach(session: Session) -> None:
    env = {k: v for k, v in os.environ.items() if k != "TMUX"}
    os.execvpe("tmux", ["tmux", "-S", session.socket, "attach", "-t", "demo"], env)


def main() -> int:
    parser = argparse.ArgumentParser(prog="make demo-NN", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("lesson", help="a lesson number (01, 02, 03-15), or end")
    parser.add_argument("--port", type=int, default=6000)
    parser.add_argument("--step", type=int)
    parser.add_argument("--next", action="store_true")
    parser.add_argument("--show", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--detach", action="store_true", help="start it, do not attach")
    parser.add_argument("--size", help="WIDTHxHEIGHT of a detached demo")
    args = parser.parse_args()
    session = Session(args.port)

    if args.lesson == "end":
        if not session.alive():
            print(f"[demo] no demo runs on port {args.port}")
        left = session.end()
        print("[demo] ended; nothing left running" if not left else
              f"[demo] ended; killed what had escaped: {', '.join(left)}")
        return 0
    demo = DEMOS.get(args.lesson.zfill(2))
    if demo is None:
        sys.exit(f"[demo] no demo for lesson {args.lesson!r}: there are {', '.join(DEMOS)}")
    if args.show:
        print_steps(demo, args.port, args.show)
        return 0

    if session.alive():
        running = session.option("demo")
        if running != demo.number:
            sys.exit(f"[demo] lesson {running}'s demo runs on port {args.port}: end it first "
                     f"(F12, or make demo-end PORT={args.port}), or give another PORT=")
        if args.next or args.step:
            go_to(session, demo, args.step or int(session.option("step") or 0) + 1)
            return 0
    else:
        if args.next:
            sys.exit(f"[demo] no demo runs on port {args.port}")
        build(demo, args.port)
        open_demo(demo, args.port, args.size, args.step or 1)
    if args.detach or not sys.stdout.isatty():
        print(f"[demo] attach with: tmux -S {session.socket} attach", flush=True)
        return 0
    attach(session)
    return 0


if __name__ == "__main__":
    sys.exit(main())
