"""ThreadSanitizer: running a -fsanitize=thread build and reading what it reported.

    server, retried = start_tsan_server(binary, log_dir)
    ...                                    # drive it, then server.stop()
    for report in read_reports(log_dir, source_dir=lesson_dir):
        report.kind                        # "data race", "lock-order-inversion (potential deadlock)", …
        report.summary()                   # "data race on global 'table': write at weensydb.cc:88 in
                                           #  handle_set (thread T1) ↔ read at weensydb.cc:95 in …"

TSan writes one file per process, LOG_DIR/tsan.PID (log_path), so a server's
reports never mix with its stderr. Its exit code (66) is the same for a real
report and for "FATAL: ThreadSanitizer: unexpected memory mapping" (a kernel with
high vm.mmap_rnd_bits), so reports are told apart by their text. Reports from g++
(libtsan) and clang++ have the same layout; clang adds columns and BuildIds.
"""
import os
import pathlib
import platform
import re
import shutil
from dataclasses import dataclass, field

from . import procfs, sandbox
from .procs import RunResult, Server, run, start_server
from .report import CannotCheck, CheckFailed

TSAN_OPTIONS = {
    "atexit_sleep_ms": "0",         # otherwise every exit with live threads waits 1 s
    "second_deadlock_stack": "1",   # both stacks of each edge of a lock-order cycle
    "report_signal_unsafe": "0",    # servers call exit paths from signal handlers
    "halt_on_error": "0",           # keep running: report every distinct problem
    "history_size": "4",            # more remembered accesses: fewer "failed to restore the stack"
    # By default TSan takes a write to a socket and a later read from any socket as
    # synchronisation (all sockets share one sync object), so two threads that touch
    # the table unlocked but take turns on the network look ordered: a race showed
    # only when their requests truly overlapped (missed 2 times in ~40 loaded runs).
    # The program's own locks are the only synchronisation a course server has.
    "io_sync": "0",
}

MAPPING_FAILURE = "FATAL: ThreadSanitizer: unexpected memory mapping"
REPO = pathlib.Path(__file__).resolve().parents[2]   # the course compiles with paths relative to it
MAPPING_FIX = "sudo sysctl vm.mmap_rnd_bits=28"
MAPPING_WHY = "ThreadSanitizer cannot start here: this kernel's address-space randomisation " \
              "(vm.mmap_rnd_bits > 28) puts memory where TSan needs its own"


def _quote(value: str) -> str:
    return f'"{value}"' if re.search(r"[\s:,'\"]", value) else value


def tsan_env(log_dir, base: dict | None = None) -> dict:
    """os.environ (or `base`) plus TSAN_OPTIONS for the checker: reports go to
    LOG_DIR/tsan.PID. Options the user already set in TSAN_OPTIONS come last, so they win."""
    env = dict(os.environ if base is None else base)
    ours = {**TSAN_OPTIONS, "log_path": str(sandbox.give(log_dir) / "tsan")}
    options = ":".join(f"{k}={_quote(v)}" for k, v in ours.items())
    if env.get("TSAN_OPTIONS", "").strip():
        options += ":" + env["TSAN_OPTIONS"].strip()
    env["TSAN_OPTIONS"] = options
    return env


def is_mapping_failure(text) -> bool:
    """True if TSan aborted at start-up because of the memory layout (an environment problem,
    not a report about the program). Exit code 66 either way, so this looks at the text."""
    if isinstance(text, bytes):
        text = text.decode(errors="replace")
    return MAPPING_FAILURE in (text or "")


# ---- stack frames -------------------------------------------------------------

@dataclass
class Frame:
    """One line of a stack: `#0 handle_set(int) /src/weensydb.cc:88:5 (weensydb+0x1234)`."""
    index: int
    function: str            # as printed, arguments included; "<null>" if unknown
    file: str | None         # None if unknown
    line: int | None = None
    column: int | None = None
    module: str | None = None   # the binary or library, e.g. "libtsan.so.2"

    @property
    def short_function(self) -> str:
        return short_function(self.function)

    def is_runtime(self) -> bool:
        """In the sanitizer runtime, libc, libstdc++ or a system header: not the program's own code."""
        if self.module and re.search(r"\.so(\.\d+)*$", self.module):
            return True
        if not self.file or self.file == "<null>":
            return True
        f = self.path()
        return (not os.path.isabs(f) or f.startswith(("/usr/", "/lib/", "/lib64/"))
                or "/libsanitizer/" in f or "/compiler-rt/" in f)

    def path(self) -> str:
        """The file's absolute path. The course compiles with paths relative to the
        repository (common/x.cc); other relative paths (glibc's) stay relative."""
        f = os.path.normpath(self.file)
        if not os.path.isabs(f) and (REPO / f).is_file():
            return str(REPO / f)
        return f

    def under(self, directory) -> bool:
        if directory is None or not self.file or not os.path.isabs(self.path()):
            return False
        try:
            here = pathlib.Path(os.path.realpath(self.path()))
            return here.is_relative_to(os.path.realpath(directory))
        except (OSError, ValueError):
            return False

    def where(self, source_dir=None) -> str:
        """`weensydb.cc:88` (relative to source_dir when under it, else the base name)."""
        if not self.file or self.file == "<null>":
            return "?"
        name = os.path.basename(self.file)
        if source_dir is not None and self.under(source_dir):
            name = os.path.relpath(os.path.realpath(self.path()), os.path.realpath(source_dir))
        return f"{name}:{self.line}" if self.line else name

    def describe(self, source_dir=None) -> str:
        """`weensydb.cc:88 in handle_set`."""
        func = self.short_function
        return self.where(source_dir) + (f" in {func}" if func and func != "<null>" else "")


def short_function(name: str) -> str:
    """`void Server::handle(int) const` → `Server::handle`; `reader(long*)` → `reader`."""
    name = name.strip().replace("(anonymous namespace)::", "")
    for suffix in (" const", " volatile", " &&", " &"):
        if name.endswith(suffix):
            name = name[:-len(suffix)]
    if name.endswith(")") and not name.endswith("operator()"):
        depth = 0
        for i in range(len(name) - 1, -1, -1):
            depth += {")": 1, "(": -1}.get(name[i], 0)
            if depth == 0:
                name = name[:i]
                break
    # the return type, if any, is before the last space outside <…> ("operator new" is one word)
    name = name.replace("operator ", "operator\0")
    depth, cut = 0, 0
    for i, ch in enumerate(name):
        depth += {"<": 1, ">": -1}.get(ch, 0)
        if ch == " " and depth == 0:
            cut = i + 1
    return (name[cut:] or name).replace("\0", " ")


_FRAME = re.compile(r"^\s*#(\d+)\s+(.*)$")
_MODULE = re.compile(r"\s+\(([^()]*?)\+0x[0-9a-fA-F]+\)(?:\s+\(BuildId: [0-9a-fA-F]+\))?\s*$")
_LOCATION = re.compile(r"^(.*?)(?::(\d+))?(?::(\d+))?$")


def parse_frame(text: str) -> Frame | None:
    """A TSan/ASan symbolised frame; None if `text` is not one."""
    m = _FRAME.match(text)
    if not m:
        return None
    index, rest = int(m.group(1)), m.group(2)
    module = None
    mm = _MODULE.search(rest)
    if mm:
        module, rest = mm.group(1), rest[:mm.start()]
    rest = rest.rstrip()
    if " /" in rest:                         # an absolute path (which may contain spaces)
        func, loc = rest.split(" /", 1)
        loc = "/" + loc
    elif " " in rest:
        func, loc = rest.rsplit(" ", 1)
    else:
        func, loc = rest, "<null>"
    if loc == "<null>":
        return Frame(index, func, None, module=module)
    lm = _LOCATION.match(loc)
    return Frame(index, func, lm.group(1),
                 int(lm.group(2)) if lm.group(2) else None,
                 int(lm.group(3)) if lm.group(3) else None, module)


def pick_frame(frames: list[Frame], source_dir=None) -> Frame | None:
    """The innermost frame in the program's own code: under source_dir if any is, else the
    first that is not the runtime or a system header; else the first with a file."""
    if source_dir is not None:
        for f in frames:
            if f.under(source_dir):
                return f
    for f in frames:
        if not f.is_runtime():
            return f
    for f in frames:
        if f.file and "/libsanitizer/" not in f.file:
            return f
    return frames[0] if frames else None


# ---- reports ------------------------------------------------------------------

@dataclass
class Section:
    """An indented header line of a report ("Write of size 8 at … by thread T1:") and its stack."""
    header: str
    frames: list[Frame] = field(default_factory=list)


@dataclass
class Site:
    """Where one side of a problem happened, reduced to one frame of the program's own code."""
    role: str                 # "read", "write", "atomic write", "acquire", "thread created", …
    thread: str | None        # "thread T1", "main thread"
    frame: Frame | None
    previous: bool = False    # TSan's "Previous write …": the earlier of the two accesses
    mutex: str | None = None  # lock-order-inversion: the mutex taken, e.g. "M1"
    holding: str | None = None      # … while holding this one
    held_at: Frame | None = None    # … which was taken here (second_deadlock_stack=1)
    via: str | None = None    # a runtime function between them, e.g. "operator delete"

    def at(self, source_dir=None) -> str:
        return self.frame.describe(source_dir) if self.frame else "an unknown place"


_ACCESS = re.compile(r"^(Previous )?((?:atomic )?(?:read|write)) of size \d+ at \S+ by (.+?)"
                     r"(?: \(mutexes: [^)]*\))?:$", re.IGNORECASE)
_ACQUIRE = re.compile(r"^Mutex (M\d+) acquired here while holding mutex (M\d+) in (.+?):$")
_PREVIOUSLY = re.compile(r"^Mutex (M\d+) previously acquired by the same thread here:$")
_CREATED = re.compile(r"^Thread (T\d+) \(tid=(\d+), (\w+)\) created by (.+?) at:$")
_RUNTIME_OPS = ("operator delete", "free", "realloc", "memcpy", "memmove", "memset", "strlen",
                "memcmp", "strcmp", "strcpy", "close", "pthread_mutex_destroy")


@dataclass
class TsanReport:
    kind: str                 # "data race", "lock-order-inversion (potential deadlock)", "thread leak", …
    lines: list[str]          # the report as printed, WARNING line to SUMMARY line
    sections: list[Section]
    sites: list[Site]
    location: str | None      # "global 'counter'", "heap block allocated at x.cc:9 in main", …
    pid: int | None = None
    source_dir: str | None = None

    @property
    def text(self) -> str:
        return "\n".join(self.lines)

    @property
    def tsan_summary(self) -> str | None:
        """TSan's own SUMMARY line (often names a libstdc++ header rather than your code)."""
        return next((ln.strip() for ln in self.lines if ln.strip().startswith("SUMMARY:")), None)

    def summary(self) -> str:
        """One line naming the program's own source lines, e.g.
        `data race on global 'n': write at race.cc:4 in writer (thread T1) ↔ read at race.cc:5 in reader (thread T2)`
        `lock-order-inversion: M1 taken at db.cc:120 in exch while holding M0 (taken at db.cc:119) ↔ …`"""
        sd = self.source_dir
        if self.kind.startswith("lock-order-inversion"):
            parts = []
            for s in self.sites:
                text = f"{s.mutex} taken at {s.at(sd)}"
                if s.holding:
                    text += f" while holding {s.holding}"
                    if s.held_at:
                        text += f" (taken at {s.held_at.where(sd)})"
                parts.append(text)
            return "lock-order-inversion: " + (" ↔ ".join(parts) or "(no stacks)")
        if self.kind == "thread leak":
            parts = [f"{s.thread} created at {s.at(sd)}" for s in self.sites]
            return "thread leak: " + (", ".join(parts) or "a thread") + " was never joined or detached"
        head = self.kind + (f" on {self.location}" if self.location else "")
        parts = []
        for s in self.sites:
            notes = [n for n in (s.thread, s.via and f"via {s.via}") if n]
            parts.append(f"{s.role} at {s.at(sd)}" + (f" ({', '.join(notes)})" if notes else ""))
        if not parts:
            own = next((pick_frame(sec.frames, sd) for sec in self.sections if sec.frames), None)
            return head + (f": at {own.describe(sd)}" if own else "")
        return head + ": " + " ↔ ".join(parts)

    def __str__(self):
        return self.summary()


def _sections(lines: list[str]) -> list[Section]:
    sections: list[Section] = []
    for line in lines[1:]:
        stripped = line.strip()
        if not stripped or stripped.startswith(("SUMMARY:", "=====")):
            continue
        frame = parse_frame(line)
        if frame is not None:
            if not sections:   # a report that opens with its stack ("unlock of an unlocked mutex")
                sections.append(Section(""))
            sections[-1].frames.append(frame)
            continue
        sections.append(Section(stripped))
    return sections


def _via(frames: list[Frame], chosen: Frame | None) -> str | None:
    if not frames or chosen is None or frames[0] is chosen or not frames[0].is_runtime():
        return None
    name = frames[0].short_function
    return name if name.startswith(_RUNTIME_OPS) else None


def _build(kind: str, lines: list[str], pid, source_dir) -> TsanReport:
    sections = _sections(lines)
    sites: list[Site] = []
    location = None
    for sec in sections:
        frame = pick_frame(sec.frames, source_dir)
        if m := _ACCESS.match(sec.header):
            sites.append(Site(m.group(2).lower(), m.group(3), frame, previous=bool(m.group(1)),
                              via=_via(sec.frames, frame)))
        elif m := _ACQUIRE.match(sec.header):
            sites.append(Site("acquire", m.group(3), frame, mutex=m.group(1), holding=m.group(2)))
        elif m := _PREVIOUSLY.match(sec.header):
            for site in reversed(sites):
                if site.holding == m.group(1) and site.held_at is None:
                    site.held_at = frame
                    break
        elif (m := _CREATED.match(sec.header)) and kind == "thread leak":
            sites.append(Site("thread created", f"thread {m.group(1)}", frame))
        elif sec.header.startswith("Location is "):
            loc = sec.header[len("Location is "):].rstrip(".:")
            if g := re.match(r"global '(.+?)'", loc):
                if g.group(1) != "<null>":   # (libtsan may add it after "stack of main thread")
                    location = f"global '{g.group(1)}'"
            elif loc.startswith("heap block"):
                location = "a heap block" + (f" allocated at {frame.describe(source_dir)}" if frame else "")
            else:
                location = re.sub(r"\s+at 0x[0-9a-f]+.*$", "", loc)
    return TsanReport(kind, lines, sections, sites, location, pid,
                      None if source_dir is None else str(source_dir))


_WARNING = re.compile(r"WARNING: ThreadSanitizer: (.+?)(?: \(pid=(\d+)\))?\s*$")


def parse_reports(text, source_dir=None) -> list[TsanReport]:
    """Every `WARNING: ThreadSanitizer: KIND` block in text (str or bytes), each up to its
    SUMMARY line. Frames under source_dir are preferred when naming a site."""
    if isinstance(text, bytes):
        text = text.decode(errors="replace")
    reports, current, prefix, kind, pid = [], None, "", "", None

    def close():
        if current:
            reports.append(_build(kind, current, pid, source_dir))

    for raw in (text or "").splitlines():
        m = _WARNING.search(raw)
        if m:
            close()
            prefix = raw[:m.start()]
            kind, pid = m.group(1), int(m.group(2)) if m.group(2) else None
            current = [raw[m.start():]]
            continue
        if current is None:
            continue
        line = raw[len(prefix):] if prefix and raw.startswith(prefix) else raw
        if line.startswith("=================="):
            close()
            current = None
            continue
        current.append(line)
        if line.startswith("SUMMARY: ThreadSanitizer"):
            close()
            current = None
    close()
    return reports


def log_files(log_dir) -> list[pathlib.Path]:
    """LOG_DIR/tsan.PID files, oldest first."""
    files = [p for p in pathlib.Path(log_dir).glob("tsan.*") if p.is_file()]
    return sorted(files, key=lambda p: (p.stat().st_mtime, p.name))


def read_log_text(log_dir) -> str:
    return "\n".join(p.read_text(errors="replace") for p in log_files(log_dir))


def read_reports(log_dir, source_dir=None) -> list[TsanReport]:
    """The reports in every LOG_DIR/tsan.* file (see tsan_env)."""
    return parse_reports(read_log_text(log_dir), source_dir)


# ---- running TSan builds --------------------------------------------------------

def setarch_wrapper() -> tuple[str, ...] | None:
    """`setarch ARCH -R`: runs one program without address-space randomisation."""
    if shutil.which("setarch") is None:
        return None
    return ("setarch", platform.machine(), "-R")


def high_aslr_entropy() -> bool:
    """More than 28 bits of mmap randomisation: gcc 12's and clang 14's TSan then abort
    ("unexpected memory mapping") or crash at start in most runs, and even a start that
    works is not to be trusted. Such machines run TSan builds under setarch -R at once."""
    return procfs.sysctl_int("vm.mmap_rnd_bits", 0) > 28


def _forget_mapping_failures(log_dir):
    for p in log_files(log_dir):
        try:
            if is_mapping_failure(p.read_text(errors="replace")):
                p.unlink()
        except OSError:
            pass


def _cannot_start(detail: str = "") -> CannotCheck:
    return CannotCheck(MAPPING_WHY + (f"; {detail}" if detail else ""), MAPPING_FIX)


def start_tsan_server(binary, log_dir, args=(), timeout: float | None = None,
                      port: int = 0) -> tuple[Server, bool]:
    """start_server(binary) with TSan's options (reports to LOG_DIR/tsan.PID).

    Returns (server, retried): retried is True if TSan aborted with "unexpected memory
    mapping" and the server was started again under `setarch -R` (or was started so at
    once, on a machine with high_aslr_entropy()); tell the student with
    note("TSan aborted with 'unexpected memory mapping' (this kernel's ASLR entropy is
    high); re-ran it under setarch -R"). Raises CannotCheck if even that fails, and
    CheckFailed (from start_server) for the program's own failures."""
    pathlib.Path(log_dir).mkdir(parents=True, exist_ok=True)
    env = tsan_env(log_dir)
    if not high_aslr_entropy():
        try:
            return start_server(binary, args, port=port, timeout=timeout, env=env), False
        except CheckFailed as failure:
            if not is_mapping_failure("\n".join(failure.details) + read_log_text(log_dir)):
                raise
    _forget_mapping_failures(log_dir)
    wrapper = setarch_wrapper()
    if wrapper is None:
        raise _cannot_start("setarch (util-linux), which could work around it, is not installed")
    try:
        return start_server(binary, args, port=port, timeout=timeout, wrapper=wrapper, env=env), True
    except CheckFailed as failure:
        shown = "\n".join(failure.details)
        if is_mapping_failure(shown + read_log_text(log_dir)):
            raise _cannot_start("it failed under setarch -R too") from None
        if "setarch:" in shown:
            line = next(ln for ln in failure.details if "setarch:" in ln)
            raise _cannot_start(f"setarch -R, which could work around it, failed: "
                                f"{line.split('setarch:', 1)[1].strip()}") from None
        raise


def run_tsan(argv, log_dir, timeout: float, input: bytes | None = None, cwd=None) -> tuple[RunResult, bool]:
    """procs.run(argv) for a TSan build, with the same retry under setarch -R as
    start_tsan_server. Returns (result, retried); reports are in LOG_DIR (read_reports)."""
    pathlib.Path(log_dir).mkdir(parents=True, exist_ok=True)
    env = tsan_env(log_dir)
    if not high_aslr_entropy():
        result = run(argv, timeout=timeout, input=input, cwd=cwd, env=env)
        if not is_mapping_failure(result.stderr.decode(errors="replace") + read_log_text(log_dir)):
            return result, False
    _forget_mapping_failures(log_dir)
    wrapper = setarch_wrapper()
    if wrapper is None:
        raise _cannot_start("setarch (util-linux), which could work around it, is not installed")
    result = run([*wrapper, *argv], timeout=timeout, input=input, cwd=cwd, env=env)
    stderr = result.stderr.decode(errors="replace")
    if is_mapping_failure(stderr + read_log_text(log_dir)):
        raise _cannot_start("it failed under setarch -R too")
    if "setarch:" in stderr and result.returncode not in (0, 66):
        line = next(ln for ln in stderr.splitlines() if "setarch:" in ln)
        raise _cannot_start(f"setarch -R, which could work around it, failed: "
                            f"{line.split('setarch:', 1)[1].strip()}")
    return result, True
