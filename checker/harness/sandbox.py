"""Student code never runs as root, and never without limits.

When the checker runs as root (a CI job, a container), every program under test
(a binary under build/lessons, build/solutions, build/starters, build/mutants or
build/graded) is started with the lesson's limits (course.toml's [lesson.limits], or
DEFAULT_LIMITS: processes, open files, file size, CPU time, no core, address space),
set in the forked child, and through wrappers placed just before it in argv:

    sh -c 'echo $$ > …/cgroup.procs …; exec "$@"'       (a memory and pids cgroup, if any)
    setpriv --reuid=UID --regid=UID --clear-groups --inh-caps=-all --bounding-set=-all --no-new-privs
    build/tools/jail --processes N --tmp-mib M --keep … --   (user, PID and mount namespaces)

so it runs as a user id that no other process on the machine has (SANDBOX_UID, one per
checker process), with no capability and no way to gain one, as pid 2 of a PID namespace
whose end kills everything it started, with a /tmp of its own (tools/programs/jail.cc).
The wrappers sit after any the check uses (setarch, prlimit, unshare -m), which keep
their privileges, and before strace, which traces the program from inside the jail.

Because the uid is the run's own, what the program leaves behind can be found without
trusting it: sweep() kills every process of that uid and removes the files it owns
under /tmp, /var/tmp and /dev/shm. Directories the program must write to (TSan's logs, the lock tracer's
trace) are given to it with give().

As an ordinary user the uid and the cgroups cannot be had: the program has the user's
rights. The jail still works where the kernel lets users make namespaces (most do), and
there it gives the process limit (counted in the jail's namespace alone), the kill of
everything started and the private /tmp; the other limits apply, and the harness still
kills its descendants (procs) and bounds its output.
NETCOURSE_NO_SANDBOX=1 turns the wrappers off (for debugging a check).
"""
import atexit
import os
import resource
import pathlib
import shutil
import subprocess
import sys
import tempfile

from . import procfs

ROOT = pathlib.Path(__file__).resolve().parents[2]
UNDER_TEST = tuple(str(ROOT / "build" / kind) + "/" for kind in
                   ("lessons", "solutions", "starters", "mutants", "graded"))
SANDBOX_UID = 200000 + os.getpid() % 100000

MIB = 1 << 20
DEFAULT_LIMITS = {
    "processes": 1024,         # processes and threads of the sandbox uid (RLIMIT_NPROC)
    "files": 4096,             # open descriptors per process (RLIMIT_NOFILE)
    "file_mib": 256,           # the largest file it may write (RLIMIT_FSIZE)
    "cpu_seconds": 300,        # CPU time per process (RLIMIT_CPU)
    "memory_mib": 4096,        # memory of all the run's programs together (a memory cgroup)
    "address_space_mib": 16384,  # address space per process (RLIMIT_AS): not for -asan/-tsan
}                              # builds, whose shadow memory reserves terabytes
limits = dict(DEFAULT_LIMITS)


def configure(lesson_limits: dict):
    """The lesson's limits (course.toml [lesson.limits]) over the defaults."""
    unknown = set(lesson_limits) - set(DEFAULT_LIMITS)
    if unknown:
        raise ValueError(f"course.toml: unknown limit(s) {', '.join(sorted(unknown))}; "
                         f"known: {', '.join(DEFAULT_LIMITS)}")
    limits.clear()
    limits.update(DEFAULT_LIMITS, **lesson_limits)


def active() -> bool:
    """Root, with the sandbox uid there to switch to: not the "root" of a user namespace that
    maps only the user who made it (the checker run by an ordinary user, in `unshare -r`)."""
    return (os.geteuid() == 0 and not os.environ.get("NETCOURSE_NO_SANDBOX")
            and shutil.which("setpriv") is not None and uid_is_mapped(SANDBOX_UID))


def uid_is_mapped(uid: int) -> bool:
    try:
        rows = [line.split() for line in open("/proc/self/uid_map")]
    except OSError:
        return False
    return any(int(first) <= uid < int(first) + int(count) for first, _, count in rows)


def prepare(argv: list[str]):
    """(argv with the wrappers inserted before the program under test, a function that sets
    the limits in the child before exec, or None). Unchanged argv and None when there is no
    program under test in argv, or NETCOURSE_NO_SANDBOX is set.

    The limits are set first, in the child the checker forks, so that a check's own
    wrappers (prlimit --nofile=1500) can lower them further: a limit once lowered cannot be
    raised again without CAP_SYS_RESOURCE in the machine's first user namespace, which a
    container's root does not have. A tracer the check puts before the program (strace)
    runs inside the sandbox with it, so that it traces the program and not the jail."""
    if os.environ.get("NETCOURSE_NO_SANDBOX"):
        return argv, None
    for i, word in enumerate(argv):
        if word.startswith(UNDER_TEST):
            sanitized = word.endswith(("-asan", "-tsan"))
            at = next((j for j in range(i) if os.path.basename(argv[j]) == "strace"), i)
            wrappers = [*cgroups.wrapper(), *drop_privileges()] if active() else []
            # as yourself, a process limit would count all your own processes, except in the jail
            return ([*argv[:at], *wrappers, *jail.wrapper(), *argv[at:]],
                    lambda: set_limits(sanitized, processes=active()))
    return argv, None


def drop_privileges() -> list[str]:
    return ["setpriv", f"--reuid={SANDBOX_UID}", f"--regid={SANDBOX_UID}", "--clear-groups",
            "--inh-caps=-all", "--bounding-set=-all", "--no-new-privs"]


def set_limits(sanitized: bool, processes: bool = True):
    """Runs in the child between fork and exec: each limit, never above what it already is."""
    wanted = {resource.RLIMIT_NOFILE: limits["files"], resource.RLIMIT_FSIZE: limits["file_mib"] * MIB,
              resource.RLIMIT_CPU: limits["cpu_seconds"], resource.RLIMIT_CORE: 0}
    if processes:
        wanted[resource.RLIMIT_NPROC] = limits["processes"]
    if not sanitized:
        wanted[resource.RLIMIT_AS] = limits["address_space_mib"] * MIB
    for which, value in wanted.items():
        value = effective(which, value)
        resource.setrlimit(which, (value, value))


class Cgroups:
    """A memory and a pids cgroup for the run's programs, where the machine lets the
    checker make them: cgroup v2 (one tree) or v1 (a tree per controller), under the
    checker's own cgroup. `kind` says which: "v2", "v1" or "none (why)"."""

    def __init__(self):
        self.kind, self.dirs, self.made = "not tried", {}, False

    def make(self):
        self.made = True
        name = f"netcourse-{os.getpid()}"
        try:
            own = dict(line.strip().split(":", 2)[1:] for line in open("/proc/self/cgroup"))
        except (OSError, ValueError):
            self.kind = "none (no /proc/self/cgroup)"
            return
        v1 = {c: pathlib.Path("/sys/fs/cgroup") / c / own[c].lstrip("/") / name
              for c in ("memory", "pids") if own.get(c) is not None and pathlib.Path(f"/sys/fs/cgroup/{c}").is_dir()}
        if len(v1) == 2:
            limits_of = {"memory": ("memory.limit_in_bytes", limits["memory_mib"] * MIB),
                         "pids": ("pids.max", limits["processes"])}
            self._try("v1", v1, limits_of)
        elif own.get("") is not None:
            v2 = pathlib.Path("/sys/fs/cgroup") / own[""].lstrip("/") / name
            self._try("v2", {"memory": v2}, {"memory": ("memory.max", limits["memory_mib"] * MIB)},
                      also=("pids.max", limits["processes"]))
        else:
            self.kind = "none (no memory and pids controllers)"

    def _try(self, kind, dirs, limits_of, also=None):
        try:
            for controller, path in dirs.items():
                remove_stale(path.parent)
                path.mkdir()
                self.dirs[controller] = path
                file, value = limits_of[controller]
                (path / file).write_text(str(value))
                if also:
                    (path / also[0]).write_text(str(also[1]))
            self.kind = kind
        except OSError as e:
            self.remove()
            self.kind = f"none ({kind}: {e.strerror or e})"

    def wrapper(self) -> list[str]:
        """A shell that moves itself into the cgroups, then execs the rest of argv."""
        if not self.made:
            self.make()
        if not self.dirs:
            return []
        procs_files = [str(path / "cgroup.procs") for path in self.dirs.values()]
        return ["sh", "-c", 'while [ "$1" != -- ]; do echo $$ > "$1" || exit 126; shift; done; shift; exec "$@"',
                "sh", *procs_files, "--"]

    def memory_used_up(self) -> bool:
        """Did a program hit the memory limit (the cgroup counted a failure)?"""
        path = self.dirs.get("memory")
        for name in ("memory.failcnt", "memory.events"):
            try:
                text = (path / name).read_text() if path else ""
            except OSError:
                continue
            if name == "memory.failcnt":
                return int(text or 0) > 0
            return any(line.startswith("oom_kill ") and line.split()[1] != "0" for line in text.splitlines())
        return False

    def remove(self):
        for path in self.dirs.values():
            try:
                path.rmdir()
            except OSError:
                pass
        self.dirs = {}


class Jail:
    """build/tools/jail (tools/programs/jail.cc): a user, PID and mount namespace for each
    program under test, where the machine allows them. `kind` says whether it works here,
    or why not; probed once, by running `true` in it the way a program would run."""
    PATH = ROOT / "build" / "tools" / "jail"

    def __init__(self):
        self.kind = None

    def works(self) -> bool:
        if self.kind is None:
            self.kind = self._probe()
        return self.kind == "yes"

    def _probe(self) -> str:
        if not self.PATH.exists():
            subprocess.run(["make", "--no-print-directory", "-s", "build/tools/jail"], cwd=ROOT,
                           capture_output=True, timeout=300)
        if not self.PATH.exists():
            return "no (build/tools/jail would not build: make build/tools/jail says why)"
        try:
            done = subprocess.run([*(drop_privileges() if active() else []), str(self.PATH), "--", "true"],
                                  capture_output=True, text=True, timeout=30)
        except (OSError, subprocess.TimeoutExpired) as e:
            return f"no ({e})"
        if done.returncode != 0:
            return f"no ({(done.stderr.strip().splitlines() or ['exit status %d' % done.returncode])[-1]})"
        return "yes"

    def wrapper(self) -> list[str]:
        """The jail's argv before the program: its process limit, the size of its private /tmp,
        and the directories under /tmp it must still see (the course, the run's temporary files)."""
        if not self.works():
            return []
        keep = [str(ROOT), str(pathlib.Path(tempfile.gettempdir()).resolve())]
        # /tmp holds more than one file may: a file too large is cut by the file limit (SIGXFSZ,
        # named in the report), not by a full disk the program may take for success
        tmp_mib = limits["file_mib"] + 64
        return [str(self.PATH), "--processes", str(limits["processes"]), "--tmp-mib", str(tmp_mib),
                *[arg for path in keep for arg in ("--keep", path)], "--"]


jail = Jail()


def remove_stale(parent: pathlib.Path):
    """Removes the empty cgroups of earlier runs that were killed before they could."""
    for old in parent.glob("netcourse-*"):
        pid = old.name.removeprefix("netcourse-")
        if pid.isdigit() and not procfs.alive(int(pid)):
            try:
                old.rmdir()
            except OSError:
                pass


cgroups = Cgroups()
atexit.register(lambda: cgroups.remove())


def limits_processes() -> bool:
    """Is there a limit on the processes of the programs under test? As root, the sandbox
    uid's; as yourself, only in the jail, whose namespace has a count of its own."""
    return active() or (not os.environ.get("NETCOURSE_NO_SANDBOX") and jail.works())


def describe() -> str:
    """What the programs under test run with, in one line."""
    if os.environ.get("NETCOURSE_NO_SANDBOX"):
        return "programs run as you, without limits (NETCOURSE_NO_SANDBOX)"
    jailed = (" in a PID, user and mount namespace each (killed with all they start; a /tmp of their own)"
              if jail.works() else f" with no namespaces of their own (jail: {jail.kind})")
    each = (f"{effective(resource.RLIMIT_NOFILE, limits['files'])} open files, {limits['file_mib']} MiB per file, "
            f"{limits['cpu_seconds']} s of CPU")
    processes = f"at most {limits['processes']} processes, " if limits_processes() else ""
    if not active():
        why = "not root" if os.geteuid() != 0 else "no setpriv, or the sandbox uid is not mapped here"
        return f"programs run as you ({why}){jailed}; {processes}{each}"
    if not cgroups.made:
        cgroups.make()
    cgroup = (f"; cgroup {cgroups.kind}: {limits['memory_mib']} MiB of memory, {limits['processes']} processes"
              if cgroups.dirs else f"; cgroup {cgroups.kind}")
    return f"programs run as uid {SANDBOX_UID} with no capabilities{jailed}; {processes}{each}{cgroup}"


def prlimit(pid: int, which: int, limits: tuple[int, int]):
    """resource.prlimit(pid, which, limits) on a program under test. A sandboxed program
    has a uid of its own, and the kernel lets another uid change its limits only with
    CAP_SYS_RESOURCE, which a container's root may lack: so the limit is set as its uid."""
    if not active():
        resource.prlimit(pid, which, limits)
        return
    code = f"import resource; resource.prlimit({pid}, {which}, {tuple(limits)})"
    done = subprocess.run([sys.executable, "-c", code], user=SANDBOX_UID, group=SANDBOX_UID,
                          extra_groups=[], capture_output=True, text=True, timeout=30)
    if done.returncode != 0:
        raise OSError(f"prlimit on pid {pid} as uid {SANDBOX_UID}: {done.stderr.strip().splitlines()[-1:]}")


def effective(which: int, value: int) -> int:
    """What set_limits() gives: never more than the checker's own hard limit."""
    hard = resource.getrlimit(which)[1]
    return value if hard == resource.RLIM_INFINITY else min(value, hard)


def give(path) -> pathlib.Path:
    """Lets the sandboxed program write into the directory `path` (its logs go there)."""
    path = pathlib.Path(path)
    if active():
        os.chown(path, SANDBOX_UID, SANDBOX_UID)
        let_through(path.parent)
    return path


def let_through(directory: pathlib.Path):
    """Lets other users pass through (o+x, not list) the checker's own directories above
    `directory` under the temporary directory: pytest's tmp_path sits under two 0700 ones."""
    top = pathlib.Path(tempfile.gettempdir()).resolve()
    directory = directory.resolve()
    while directory != top and top in directory.parents:
        info = directory.stat()
        if info.st_uid == os.geteuid() and not info.st_mode & 0o001:
            directory.chmod(info.st_mode & 0o7777 | 0o001)
        directory = directory.parent


def give_file(path) -> pathlib.Path:
    """Creates the (empty) file `path` for the sandboxed program to append to. Made here and
    given away, because a preloaded library also loads into the wrappers that run as root
    before the program, and a file they created would not be the program's to write."""
    path = pathlib.Path(path)
    if active():
        path.touch()
        give(path.parent)
        give(path)
    return path


def processes() -> list[int]:
    """Every process running as the sandbox uid."""
    return procfs.processes_of(SANDBOX_UID)


def sweep() -> list[str]:
    """Kills every process of the sandbox uid, reaps those the checker adopted, and removes
    the uid's files under /tmp, /var/tmp and /dev/shm; returns what it found, in words
    (nothing when the programs cleaned up after themselves)."""
    if not active():
        return []
    left = []
    for _ in range(5):
        pids = processes()
        if not pids:
            break
        if not left:
            left.append(f"{len(pids)} process(es) still running: killed")
        kill_every_process_of_the_uid()
        for pid in processes():
            if procfs.parent(pid) == os.getpid():   # adopted (the checker is the subreaper)
                try:
                    os.waitpid(pid, 0)
                except ChildProcessError:
                    pass
    for path in [p for top in ("/tmp", "/var/tmp", "/dev/shm") for p in files_left(top)]:
        if path.is_dir() and not path.is_symlink():
            shutil.rmtree(path, ignore_errors=True)
        else:
            path.unlink(missing_ok=True)
        left.append(f"{path}: removed")
    return left


def kill_every_process_of_the_uid():
    """kill(-1, SIGKILL) sent as the sandbox uid reaches every process of that uid at once
    (the kernel walks the process list under a lock that fork() must wait for), so a fork
    bomb cannot outrun it the way it outruns a scan of /proc followed by kills."""
    subprocess.run([sys.executable, "-c", "import os, signal; os.kill(-1, signal.SIGKILL)"],
                   user=SANDBOX_UID, group=SANDBOX_UID, extra_groups=[], timeout=30,
                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def files_left(top: str) -> list[pathlib.Path]:
    """The files and directories directly under `top` that the sandbox uid owns."""
    found = []
    if not os.path.isdir(top):
        return found
    for entry in os.scandir(top):
        try:
            if entry.stat(follow_symlinks=False).st_uid == SANDBOX_UID:
                found.append(pathlib.Path(entry.path))
        except OSError:
            pass
    return found
