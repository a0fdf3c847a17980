"""The demo's tmux session, in namespaces of its own.

The tmux server runs as pid 1 of a new PID namespace, in a new network namespace:

    unshare --pid --fork --kill-child --mount-proc --net [-r] \\
        sh -c 'ip link set lo up && exec tmux -D -S SOCKET -f tools/demo/tmux.conf'

so that
- every pane (server, clients, capture) shares a loopback interface that carries only the
  demo's traffic: the fixed port (6000) is always free, a capture shows nothing else, and
  dumpcap needs no special rights (the checker captures the same way, checker/run.py);
- `pidof weensydb` and /proc in the panes see only the demo's processes;
- ending it is one step: `tmux kill-server` ends pid 1, and the kernel kills everything
  left in its PID namespace, however it forked or called setsid.

Where namespaces cannot be had (a container that forbids them), the server runs as a plain
tmux server on the machine's loopback: the port must then be free, and ending it kills the
process group of every pane. Every process of a demo carries NETCOURSE_DEMO=SOCKET in its
environment, which is how `end()` proves that nothing is left.
"""
import os
import pathlib
import shutil
import signal
import subprocess
import tempfile

from checker.harness.waiting import wait_until

ROOT = pathlib.Path(__file__).resolve().parents[2]
CONF = pathlib.Path(__file__).resolve().parent / "tmux.conf"
MARK = "NETCOURSE_DEMO"


def socket_path(port: int) -> str:
    """One demo per port: build/demo/PORT.sock (in /tmp if that path is too long for a socket)."""
    path = ROOT / "build" / "demo" / f"{port}.sock"
    if len(str(path)) > 100:
        path = pathlib.Path(tempfile.gettempdir()) / f"netcourse-demo-{os.getuid()}-{port}.sock"
    return str(path)


class Session:
    """A demo's tmux server, reached through its socket."""

    def __init__(self, port: int):
        self.port = port
        self.socket = socket_path(port)

    # -- talking to tmux --
    def tmux(self, *args, check=True) -> str:
        env = {k: v for k, v in os.environ.items() if k != "TMUX"}   # works from inside tmux too
        done = subprocess.run(["tmux", "-S", self.socket, *map(str, args)], env=env,
                              capture_output=True, text=True, timeout=10)
        if check and done.returncode != 0:
            raise RuntimeError(f"tmux {' '.join(map(str, args))}: {done.stderr.strip()}")
        return done.stdout

    def alive(self) -> bool:
        return os.path.exists(self.socket) and \
            subprocess.run(["tmux", "-S", self.socket, "has-session", "-t", "demo"],
                           capture_output=True, timeout=10).returncode == 0

    def option(self, name: str) -> str:
        return self.tmux("show-options", "-v", "-t", "demo", f"@{name}", check=False).strip()

    def set_option(self, name: str, value) -> None:
        self.tmux("set-option", "-t", "demo", f"@{name}", str(value))

    def pane(self, name: str) -> str:
        """The tmux id (%N) of the pane called name ("server", "client", …)."""
        pane = self.option("pane_" + name.replace(" ", "_"))
        if not pane:
            raise KeyError(f"this demo has no pane {name!r}")
        return pane

    def text(self, name: str) -> str:
        """What the pane shows, with its scrollback (capture-pane), long lines joined."""
        return self.tmux("capture-pane", "-p", "-J", "-S", "-2000", "-t", self.pane(name))

    def type(self, name: str, text: str) -> None:
        """Types text into the pane without pressing Enter."""
        self.tmux("send-keys", "-t", self.pane(name), "-l", text)

    def press(self, name: str, *keys: str) -> None:
        self.tmux("send-keys", "-t", self.pane(name), *keys)

    def wait_for(self, name: str, needle, timeout: float, what: str) -> bool:
        """Polls the pane until needle (a str, or a compiled regex) shows in it."""
        def seen():
            text = self.text(name)
            return needle in text if isinstance(needle, str) else needle.search(text)
        return wait_until(seen, timeout, what, interval=0.05)

    def wait_for_shell(self, name: str, timeout: float) -> bool:
        """Polls until the pane's foreground program is its shell again (e.g. after a Ctrl-C)."""
        shells = {"bash", "sh", "dash", "zsh", "fish", os.path.basename(os.environ.get("SHELL", "sh"))}
        pane = self.pane(name)
        return wait_until(lambda: self.tmux("display-message", "-p", "-t", pane,
                                            "#{pane_current_command}").strip() in shells,
                          timeout, "the pane's shell", interval=0.05)

    # -- starting and ending --
    def start(self, width: int | None, height: int | None) -> str:
        """Starts the server and an empty session "demo"; returns how it is contained."""
        os.makedirs(os.path.dirname(self.socket), exist_ok=True)
        os.makedirs(ROOT / "build" / "demo", exist_ok=True)     # the steps' own files
        if os.path.exists(self.socket):
            os.unlink(self.socket)        # a stale socket: alive() said no server answers it
        env = {**os.environ, MARK: self.socket}
        # As the checker runs TSan builds (checker/harness/tsan.py): both stacks of a lock-order
        # cycle, and only the program's own locks as synchronisation (io_sync=0), or a race
        # between requests that take turns on the network can go unreported.
        env.setdefault("TSAN_OPTIONS", "io_sync=0 second_deadlock_stack=1 atexit_sleep_ms=0")
        env.pop("TMUX", None)
        server = ["tmux", "-D", "-S", self.socket, "-f", str(CONF)]
        contained = namespaces_prefix()
        if contained:
            argv = [*contained, "sh", "-c", 'ip link set lo up && exec "$@"', "sh", *server]
            how = "own network and PID namespaces"
        else:
            argv = server
            how = "the machine's own loopback (no namespaces here)"
        subprocess.Popen(argv, env=env, cwd=ROOT, start_new_session=True, stdin=subprocess.DEVNULL,
                         stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        if not wait_until(lambda: os.path.exists(self.socket), 10, "the tmux server's socket", 0.02):
            raise RuntimeError(f"the demo's tmux server did not start ({' '.join(argv)})")
        size = ["-x", width, "-y", height] if width and height else []
        self.tmux("new-session", "-d", "-s", "demo", "-c", ROOT, *size)
        self.set_option("contained", "yes" if contained else "no")
        return how

    def end(self) -> list[str]:
        """Kills the demo and everything it started. Returns what was still running once
        tmux had gone (nothing, unless something escaped; that is then killed by pid)."""
        if os.path.exists(self.socket):
            if self.option("contained") == "no":
                # No PID namespace: kill each pane's process group (its shell's, and the
                # shell's jobs get SIGHUP from it). In a namespace the kernel does all this.
                for pid in self.tmux("list-panes", "-s", "-t", "demo", "-F", "#{pane_pid}",
                                     check=False).split():
                    try:
                        os.killpg(int(pid), signal.SIGHUP)
                    except (ProcessLookupError, ValueError, PermissionError):
                        pass
            if os.environ.get(MARK) == self.socket:
                # Run by a key of the demo itself (F12): this process is one the demo started,
                # and in a namespace it dies with tmux. So remove the socket first, then stop
                # tmux by its pid (as seen from in here: from the demo's own PID namespace).
                pid = int(self.tmux("display-message", "-p", "-t", "demo", "#{pid}"))
                os.unlink(self.socket)
                os.kill(pid, signal.SIGTERM)
            else:
                self.tmux("kill-server", check=False)
        wait_until(lambda: not self.processes(), 5, "the demo's processes to end", interval=0.05)
        survivors = self.processes()
        for pid, _ in survivors:
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        wait_until(lambda: not self.processes(), 5, "the demo's processes to die", interval=0.05)
        if os.path.exists(self.socket):
            os.unlink(self.socket)
        for scratch in (ROOT / "build" / "demo").glob(f"{self.port}-*"):   # the steps' own files
            scratch.unlink()
        return [f"{pid} {cmd}" for pid, cmd in survivors]

    def processes(self) -> list[tuple[int, str]]:
        """Every process carrying this demo's mark (pid, command line)."""
        mark = f"{MARK}={self.socket}".encode()
        found = []
        for entry in os.listdir("/proc"):
            if not entry.isdigit() or int(entry) == os.getpid():
                continue
            try:
                with open(f"/proc/{entry}/environ", "rb") as f:
                    if mark not in f.read().split(b"\0"):
                        continue
                with open(f"/proc/{entry}/cmdline", "rb") as f:
                    found.append((int(entry), f.read().replace(b"\0", b" ").decode(errors="replace")))
            except OSError:
                pass
        return found


_prefix = None


def namespaces_prefix() -> list[str]:
    """The unshare command that gives the demo its namespaces, or [] where they cannot be had."""
    global _prefix
    if _prefix is None:
        _prefix = []
        if shutil.which("unshare") and shutil.which("ip"):
            argv = ["unshare", "--pid", "--fork", "--kill-child", "--mount-proc", "--net"]
            if os.geteuid() != 0:
                argv.append("--map-root-user")
            probe = subprocess.run([*argv, "ip", "link", "set", "lo", "up"], capture_output=True, timeout=30)
            if probe.returncode == 0:
                _prefix = argv
    return _prefix

