"""lesson 17 · pipes-and-fifos: a shell's pipeline, and a FIFO as a file's address

The student's programs:
  `pipeline [--pipe-size BYTES] 'PRODUCER' 'FILTER'` runs PRODUCER | FILTER with pipe, fork,
    dup2, exec and waitpid, and reports each child's end on stderr
    ("pipeline: yes: killed by SIGPIPE");
  `fifo_load [-d DIR] SOURCE.csv.gz DATABASE TABLE` runs `gzip -dc SOURCE` into a FIFO that
    `sqlite3 DATABASE ".import --csv FIFO TABLE"` reads, and removes the FIFO at the end and
    on SIGINT/SIGTERM;
  `fifo_probe open FIFO` and `fifo_probe write FIFO WRITERS SIZE COUNT`: experiments on a FIFO
    the checker makes.

Everything is observed from outside: the rows in the database (Python's sqlite3), the calls
made (strace -y names the file behind each descriptor), the descriptors each process holds
(/proc/PID/fd and fdinfo), the capacity of the children's pipe (F_GETPIPE_SZ on a descriptor
opened through /proc), what a process is blocked in (/proc/PID/syscall), what is left in
the directory. The checker is the reader of the FIFOs of fifo_probe.
"""
import fcntl
import gzip
import hashlib
import os
import platform
import re
import select
import signal
import sqlite3
import stat
import subprocess
import time

from checker.harness import Deadline, T, check, fail, note, procfs, run, sandbox, show_bytes, spawn, wait_until
from checker.harness.procs import kill_group, program_lines, program_pid
from checker.harness.strace import read_trace_file, strace_prefix
from checker.harness.watch import activity, run_watched

PIPELINE, FIFO_LOAD, FIFO_PROBE = "pipeline", "fifo_load", "fifo_probe"
PIPE_BUF = 4096   # limits.h; pipe(7): writes of at most this many bytes are atomic
OPENAT = {"x86_64": {2, 257}, "aarch64": {56}}.get(platform.machine(), set())


def tried(target, name, *args) -> str:
    shown = [a if " " not in str(a) else f"'{a}'" for a in map(str, args)]
    return " ".join([target.shown(target.binary(name)), *shown])


def hang_hint(result, otherwise: str) -> str:
    if result.timed_out:
        return f"when killed it was {result.activity or 'in a state /proc could not tell'}; {otherwise}"
    return otherwise


# ---- pipeline ---------------------------------------------------------------------------

@check("builds")
def test_build(target):
    target.build()


@check("pipeline 'seq 1 100000' 'grep 7' prints what the shell's pipe prints", needs=["build"])
def test_pipeline_output(target):
    args = ["seq 1 100000", "grep 7"]
    want = "".join(f"{i}\n" for i in range(1, 100001) if "7" in str(i)).encode()
    lines = want.count(b"\n")
    result = run_watched([target.binary(PIPELINE), *args], timeout=T(10))
    if result.returncode != 0 or result.stdout != want:
        fail("pipeline did not print grep's output and end" if not result.timed_out
             else "pipeline never ended: its filter still waits for the end of its input",
             tried=tried(target, PIPELINE, *args),
             expected=f"exit status 0 and the {lines} lines of `seq 1 100000 | grep 7` "
                      f"({len(want)} bytes)",
             seen=f"{result.exit_description()}; {len(result.stdout)} bytes: {show_bytes(result.stdout, 60)}",
             details=result.stderr_lines(),
             hint=hang_hint(result, "grep sees end-of-file only when every write end of the pipe is "
                                    "closed: in the producer after dup2, in the filter, and in pipeline "
                                    "itself (TODO 2, 3, 5)") if result.timed_out else
             ("pipeline ended before its filter had printed everything: a program in the checker's jail "
              "takes its children with it when it ends, as a terminal's shell would not wait either. "
              "waitpid() for both children before returning (TODO 4)"
              if want.startswith(result.stdout) and result.returncode == 0 else
              "the producer's stdout must be the pipe's write end and the filter's stdin its read end "
              "(dup2 in each child, TODO 2 and 3); pipeline exits with the filter's status"))
    note(f"{lines} lines, {len(want)} bytes, as `seq 1 100000 | grep 7` prints them")


def status_lines(stderr: bytes) -> list[str]:
    return [line for line in stderr.decode(errors="replace").splitlines() if line.startswith("pipeline: ")]


@check("pipeline reports each child's exit status, and exits with the filter's", needs=["pipeline_output"])
def test_exit_statuses(target):
    result = run_watched([target.binary(PIPELINE), "true", "false"], timeout=T(10))
    lines = status_lines(result.stderr)
    want = ["pipeline: true: exit status 0", "pipeline: false: exit status 1"]
    missing = [w for w in want if w not in lines]
    filter_status = ("pipeline's status is the filter's, not the producer's nor that of the child that "
                     "ended last: keep the status of the child whose pid is the filter's (TODO 4)")
    if missing or result.returncode != 1:
        fail("pipeline true false: " + (f"no line `{missing[0]}`" if missing else
                                        f"{result.exit_description()}, not exit status 1 (false's)"),
             tried=tried(target, PIPELINE, "true", "false"),
             expected="on stderr: " + "; ".join(want) + "; exit status 1, the filter's",
             seen=f"{result.exit_description()}; stderr lines: {lines or 'none'}",
             details=result.stderr_lines(),
             hint=f"the lines are right, the exit status is not: {filter_status}" if not missing else
                  "waitpid() each child (TODO 4) and describe its status with WIFEXITED/WEXITSTATUS; "
                  "the raw status of exit(1) is 256, not 1")
    # true and false end in either order; here the filter surely ends first, the producer 0.5 s later
    late = ["sleep 0.5", "false"]
    result = run_watched([target.binary(PIPELINE), *late], timeout=T(10))
    late_lines = status_lines(result.stderr)
    if result.returncode != 1:
        fail(f"pipeline 'sleep 0.5' false: {result.exit_description()}, not exit status 1 (false's)",
             tried=tried(target, PIPELINE, *late),
             expected="exit status 1, the filter's, though sleep (status 0) ends after it",
             seen=f"{result.exit_description()}; stderr lines: {late_lines or 'none'}",
             details=result.stderr_lines(),
             hint=filter_status)
    note("; ".join(want) + "; and `pipeline 'sleep 0.5' false` exits 1")


@check("pipeline 'yes' 'head -n 1': yes is killed by SIGPIPE, and pipeline says so by name",
       needs=["pipeline_output"])
def test_sigpipe_named(target):
    args = ["yes", "head -n 1"]
    result = run_watched([target.binary(PIPELINE), *args], timeout=T(10))
    lines = status_lines(result.stderr)
    if result.timed_out or result.stdout != b"y\n" or "pipeline: yes: killed by SIGPIPE" not in lines:
        fail("yes was not reported killed by SIGPIPE" if not result.timed_out else
             "pipeline 'yes' 'head -n 1' never ended: yes never got SIGPIPE",
             tried=tried(target, PIPELINE, *args),
             expected="`y` on stdout, `pipeline: yes: killed by SIGPIPE` and "
                      "`pipeline: head -n 1: exit status 0` on stderr",
             seen=f"{result.exit_description()}; stdout {show_bytes(result.stdout)}; stderr lines: "
                  f"{lines or 'none'}",
             details=result.stderr_lines(),
             hint=hang_hint(result, "a writer gets SIGPIPE only when no process holds a read end: close "
                                    "the read end in the producer (TODO 2) and in pipeline (TODO 5)")
             if result.timed_out else
             "WIFSIGNALED(status), then WTERMSIG(status) is the signal; sigabbrev_np() names it "
             "(TODO 4)")
    note("; ".join(lines))


def pipe_inode(target_text: str) -> str | None:
    m = re.fullmatch(r"pipe:\[(\d+)\]", target_text)
    return m.group(1) if m else None


def fd_table(pid: int) -> dict[int, tuple[str, str]]:
    """{fd: (what it points to, "read end"/"write end"/"both")}, from /proc/PID/fd and fdinfo."""
    table = {}
    try:
        names = os.listdir(f"/proc/{pid}/fd")
    except OSError:
        return table
    for name in names:
        try:
            what = os.readlink(f"/proc/{pid}/fd/{name}")
            flags = int(re.search(r"flags:\s+(\d+)", open(f"/proc/{pid}/fdinfo/{name}").read()).group(1), 8)
        except (OSError, AttributeError):
            continue
        mode = {os.O_RDONLY: "read end", os.O_WRONLY: "write end"}.get(flags & os.O_ACCMODE, "both ends")
        table[int(name)] = (what, mode)
    return table


def comm(pid: int) -> str:
    try:
        return open(f"/proc/{pid}/comm").read().strip()
    except OSError:
        return "gone"


def started_children(pid: int, names: set[str]):
    """The children of pid once they have exec'd the commands `names`: {comm: pid}, or None."""
    kids = {comm(k): k for k in procfs.children(pid)}
    return kids if names <= set(kids) else None


def spawn_logged(argv, tmp_path, name):
    """A program started in the background, its stdout and stderr in files under tmp_path."""
    out, err = tmp_path / f"{name}.out", tmp_path / f"{name}.err"
    with open(out, "wb") as o, open(err, "wb") as e:
        proc = spawn(argv, stdout=o, stderr=e)
    return proc, out, err


@check("every descriptor not needed is closed: only the producer's fd 1 and the filter's fd 0 "
       "are the pipe (/proc/PID/fd)", needs=["build"])
def test_no_leaked_descriptors(target, tmp_path):
    args = ["sleep 30", "cat"]
    proc, _, err = spawn_logged([target.binary(PIPELINE), *args], tmp_path, "pipeline")
    try:
        pid = program_pid(proc)
        kids = wait_until(lambda: started_children(pid, {"sleep", "cat"}), T(5), "sleep and cat exec'd")
        if not kids:
            fail("pipeline did not start `sleep` and `cat` as two children",
                 tried=tried(target, PIPELINE, *args),
                 expected="two children of pipeline, running sleep and cat",
                 seen=f"children: {[comm(k) for k in procfs.children(pid)] or 'none'}",
                 details=program_lines(err.read_bytes()), hint="fork twice, and exec in each child")
        processes = {f"pipeline itself (pid {pid})": pid, f"the producer `sleep 30` (pid {kids['sleep']})":
                     kids["sleep"], f"the filter `cat` (pid {kids['cat']})": kids["cat"]}
        tables = {who: fd_table(p) for who, p in processes.items()}
        filter_in = tables[f"the filter `cat` (pid {kids['cat']})"].get(0, ("nothing", ""))
        inode = pipe_inode(filter_in[0])
        if inode is None:
            fail("the filter's stdin is not a pipe", tried=tried(target, PIPELINE, *args),
                 expected="cat's fd 0: pipe:[N], the read end", seen=f"cat's fd 0: {filter_in[0]}",
                 hint="dup2(read end, STDIN_FILENO) in the filter's child (TODO 3)")
        allowed = {(kids["sleep"], 1), (kids["cat"], 0)}
        leaks = [f"{who} holds fd {fd} → pipe:[{inode}], the {mode}"
                 for who, table in tables.items() for fd, (what, mode) in sorted(table.items())
                 if pipe_inode(what) == inode and (processes[who], fd) not in allowed]
        producer_out = tables[f"the producer `sleep 30` (pid {kids['sleep']})"].get(1, ("nothing", ""))[0]
        if pipe_inode(producer_out) != inode:
            leaks.insert(0, f"the producer's fd 1 is {producer_out}, not the pipe")
        if leaks:
            write_leak = any("write end" in leak and "filter" in leak for leak in leaks)
            fail(f"{len(leaks)} descriptor(s) of the pipe open where they are not needed: {leaks[0]}",
                 tried=f"{tried(target, PIPELINE, *args)}; read /proc/PID/fd and fdinfo of pipeline and of "
                       "its two children",
                 expected=f"pipe:[{inode}] only as the producer's fd 1 (write end) and the filter's fd 0 "
                          "(read end); pipeline itself holds neither end",
                 seen="; ".join(leaks),
                 hint=("a write end in the filter: it never sees end-of-file, since it could still write "
                       "itself. After dup2, close both original descriptors in each child (TODO 2, 3)"
                       if write_leak else
                       "after dup2, close both original descriptors in each child (TODO 2, 3), and both "
                       "ends in pipeline once the children are started (TODO 5)"))
        note(f"pipe:[{inode}]: sleep's fd 1 (write end), cat's fd 0 (read end), nothing else")
    finally:
        kill_group(proc)


@check("pipeline --pipe-size 262144: F_GETPIPE_SZ says 65536 first, and the children's pipe "
       "holds 262144 bytes (F_GETPIPE_SZ through /proc)", needs=["pipeline_output"])
def test_pipe_capacity(target, tmp_path):
    wanted = 262144
    r, w = os.pipe()
    default = fcntl.fcntl(r, fcntl.F_GETPIPE_SZ)
    os.close(r)
    os.close(w)
    args = ["--pipe-size", str(wanted), "sleep 30", "cat"]
    proc, _, err = spawn_logged([target.binary(PIPELINE), *args], tmp_path, "pipeline")
    try:
        pid = program_pid(proc)
        kids = wait_until(lambda: started_children(pid, {"sleep", "cat"}), T(5), "sleep and cat exec'd")
        capacity, said = None, ""
        if kids:
            try:
                fd = os.open(f"/proc/{kids['cat']}/fd/0", os.O_RDONLY | os.O_NONBLOCK)
                try:
                    capacity = fcntl.fcntl(fd, fcntl.F_GETPIPE_SZ)
                finally:
                    os.close(fd)
            except OSError as e:
                said = f"cat's fd 0 is no pipe ({e.strerror})"
        printed = err.read_bytes().decode(errors="replace")
        first = re.search(r"pipe capacity (\d+) bytes", printed)
        if capacity != wanted or not first or int(first.group(1)) != default:
            fail(f"the pipe between the children holds {capacity} bytes, not {wanted}" if capacity != wanted
                 else "pipeline did not print the capacity F_GETPIPE_SZ gave before the change",
                 tried=f"{tried(target, PIPELINE, *args)}; open /proc/PID/fd/0 of cat, fcntl(F_GETPIPE_SZ)",
                 expected=f"`pipeline: pipe capacity {default} bytes` then `… now {wanted} bytes` on stderr; "
                          f"a pipe of {wanted} bytes",
                 seen=f"capacity {capacity}{'; ' + said if said else ''}",
                 details=program_lines(printed.encode()),
                 hint="fcntl(fd, F_SETPIPE_SZ, bytes) takes bytes, and either end of the pipe; the kernel "
                      "rounds up to a power-of-two number of pages (TODO 1)")
        note(f"default {default} bytes (measured here), then {capacity} bytes in the children's pipe; "
             f"/proc/sys/fs/pipe-max-size = {procfs.sysctl('fs/pipe-max-size') or '?'}")
    finally:
        kill_group(proc)


# ---- fifo_probe ---------------------------------------------------------------------------

def make_fifo(tmp_path, name="probe.fifo"):
    sandbox.give(tmp_path)
    path = tmp_path / name
    os.mkfifo(path, 0o666)
    os.chmod(path, 0o666)
    return path


def syscall_number(pid: int) -> int | None:
    try:
        first = open(f"/proc/{pid}/syscall").read().split()[0]
        return int(first) if first.lstrip("-").isdigit() else None
    except (OSError, IndexError):
        return None


@check("fifo_probe open: with O_NONBLOCK open() fails with ENXIO; without, it blocks until a reader "
       "opens the FIFO", needs=["build"])
def test_fifo_open_blocks(target, tmp_path):
    fifo = make_fifo(tmp_path)
    proc, out, err = spawn_logged([target.binary(FIFO_PROBE), "open", fifo], tmp_path, "probe")
    reader = None
    try:
        pid = program_pid(proc)
        said = lambda: out.read_bytes().decode(errors="replace")
        what = f"{tried(target, FIFO_PROBE, 'open', fifo)}, with no reader"
        if not wait_until(lambda: "opening for writing" in said() or proc.poll() is not None, T(5), "probe"):
            fail("fifo_probe open printed nothing in 5 s", tried=what,
                 expected="`O_NONBLOCK: ENXIO`, then `opening for writing...`", seen=show_bytes(out.read_bytes()),
                 details=program_lines(err.read_bytes()), hint="flush stdout after each line (TODO 1)")
        if not said().startswith("O_NONBLOCK: ENXIO"):
            fail("open(O_WRONLY | O_NONBLOCK) did not fail with ENXIO", tried=what,
                 expected="first line `O_NONBLOCK: ENXIO` (fifo(7): no reader yet)",
                 seen=show_bytes(out.read_bytes(), 120), details=program_lines(err.read_bytes()),
                 hint="open the FIFO with O_WRONLY | O_NONBLOCK and look at errno (TODO 1)")
        # A measurement window: the open must still be waiting 0.3 s later, in open().
        blocked = wait_until(lambda: syscall_number(pid) in OPENAT, T(2), "blocked in open")
        time.sleep(0.3)
        if "opened" in said().replace("opening", "") or not blocked or syscall_number(pid) not in OPENAT:
            fail("open(O_WRONLY) of a FIFO with no reader did not block",
                 tried=what + "; wait 0.3 s",
                 expected="the program blocked in open(), `opened` not yet printed",
                 seen=f"it printed {show_bytes(out.read_bytes(), 120)}; it is "
                      f"{activity(pid) if procfs.alive(pid) else 'gone'}",
                 details=program_lines(err.read_bytes()),
                 hint="open with O_WRONLY alone: O_RDWR makes the program its own reader, and never blocks "
                      "(fifo(7) leaves it undefined by POSIX)")
        t0 = time.monotonic()
        reader = os.open(fifo, os.O_RDONLY | os.O_NONBLOCK)
        data = read_until_eof(reader, T(5), limit=64)
        waited = time.monotonic() - t0
        if data != b"hello\n" or "opened" not in said().replace("opening", ""):
            fail("once a reader opened the FIFO, fifo_probe did not go on", tried=what + "; then open it for reading",
                 expected="`opened` printed and `hello` read from the FIFO", seen=f"read {show_bytes(data)}; "
                 f"printed {show_bytes(out.read_bytes(), 120)}", details=program_lines(err.read_bytes()),
                 hint="after the blocking open(), print `opened`, write hello (TODO 1)")
        note(f"ENXIO at once; blocked in open() until the checker opened the FIFO, then `hello` in "
             f"{waited * 1000:.0f} ms")
    finally:
        if reader is not None:
            os.close(reader)
        kill_group(proc)


def read_until_eof(fd: int, timeout: float, limit: int, stop_after: int | None = None) -> bytes:
    """Reads a FIFO opened O_RDONLY | O_NONBLOCK until end-of-file (every writer gone, after one
    came), `stop_after` bytes, `limit` bytes or the timeout. Before any writer came, poll()
    reports nothing (fifo(7)/pipe_poll: no POLLHUP until a writer has come and gone)."""
    data = bytearray()
    deadline = Deadline(timeout)
    poller = select.poll()
    poller.register(fd, select.POLLIN)
    while len(data) < limit and (stop_after is None or len(data) < stop_after):
        left = deadline.left()
        if left <= 0 or not poller.poll(min(left, 0.5) * 1000):
            if left <= 0:
                break
            continue
        try:
            chunk = os.read(fd, 65536 if stop_after is None else min(65536, stop_after - len(data)))
        except BlockingIOError:
            continue
        if not chunk:
            break
        data += chunk
    return bytes(data)


def mixed_records(data: bytes, size: int) -> tuple[int, dict[str, int]]:
    """(records of `size` bytes that are not one letter then '\\n', {letter: whole records})."""
    mixed, whole = 0, {}
    for i in range(0, len(data) - len(data) % size, size):
        record = data[i:i + size]
        letter = record[:1]
        if record == letter * (size - 1) + b"\n":
            whole[letter.decode()] = whole.get(letter.decode(), 0) + 1
        else:
            mixed += 1
    return mixed, whole


def write_records(target, tmp_path, writers, size, count, name):
    fifo = make_fifo(tmp_path, name)
    reader = os.open(fifo, os.O_RDONLY | os.O_NONBLOCK)
    argv = [target.binary(FIFO_PROBE), "write", fifo, writers, size, count]
    proc, out, err = spawn_logged(argv, tmp_path, name)
    try:
        data = read_until_eof(reader, T(30), limit=writers * size * count + 1)
        try:
            proc.wait(timeout=T(5))
        except subprocess.TimeoutExpired:
            pass
        return data, proc.returncode, err.read_bytes(), tried(target, FIFO_PROBE, "write", fifo, writers, size, count)
    finally:
        os.close(reader)
        kill_group(proc)


@check("fifo_probe write: records of PIPE_BUF (4096) bytes from 4 writers never interleave "
       "(and larger ones can: shown)", needs=["build"])
def test_pipe_buf_atomic(target, tmp_path):
    writers, count = 4, 500
    data, code, err, what = write_records(target, tmp_path, writers, PIPE_BUF, count, "atomic.fifo")
    mixed, whole = mixed_records(data, PIPE_BUF)
    want = {chr(ord("A") + i): count for i in range(writers)}
    if mixed or whole != want or len(data) != writers * count * PIPE_BUF or code != 0:
        fail(f"{mixed} of {len(data) // PIPE_BUF} records of {PIPE_BUF} bytes came interleaved" if mixed
             else "the records are not all there",
             tried=f"{what}; read the FIFO to its end, cut it into {PIPE_BUF}-byte records",
             expected=f"{writers * count} records, {count} of each letter A–{chr(ord('A') + writers - 1)}, each "
                      f"one letter repeated then a newline; exit status 0",
             seen=f"{len(data)} bytes; whole records by letter {whole}; exit status {code}",
             details=program_lines(err),
             hint="one write() call per record: the kernel keeps a write of at most PIPE_BUF bytes "
                  "in one piece (pipe(7)); two calls of half a record are two pieces (TODO 2)" if data else
                  "nothing reached the FIFO: each writer must write() its records to fd (TODO 2)")
    big = 128 * 1024
    data, _, _, _ = write_records(target, tmp_path, writers, big, 16, "big.fifo")
    big_mixed, _ = mixed_records(data, big)
    note(f"{writers * count} records of {PIPE_BUF} bytes, none interleaved; shown, not checked: with records "
         f"of {big} bytes (twice the pipe), {big_mixed} of {len(data) // big} came interleaved")


@check("fifo_probe write: when the reader closes the FIFO, the writers' EPIPE (or SIGPIPE) is "
       "reported, with no hang", needs=["build"])
def test_epipe_reported(target, tmp_path):
    fifo = make_fifo(tmp_path, "epipe.fifo")
    reader = os.open(fifo, os.O_RDONLY | os.O_NONBLOCK)
    argv = [target.binary(FIFO_PROBE), "write", fifo, 2, PIPE_BUF, 1000000]
    proc, out, err = spawn_logged(argv, tmp_path, "epipe")
    what = f"{tried(target, FIFO_PROBE, 'write', fifo, 2, PIPE_BUF, 1000000)}; read 64 KiB, close the FIFO"
    try:
        got = read_until_eof(reader, T(10), limit=1 << 20, stop_after=65536)
        os.close(reader)
        reader = None
        try:
            proc.wait(timeout=T(5))
        except subprocess.TimeoutExpired:
            pass
        said = err.read_bytes()
        doing = activity(program_pid(proc)) if proc.poll() is None else None
        children = procfs.children(program_pid(proc)) if proc.poll() is None else []
        busy = [f"writer pid {k} {activity(k)}" for k in children]
        if proc.poll() is None or proc.returncode == 0 or not re.search(rb"EPIPE|SIGPIPE", said):
            fail("fifo_probe still ran 5 s after its reader closed the FIFO" if proc.poll() is None else
                 "the writers' EPIPE was not reported",
                 tried=what, expected="the writers end at once, `EPIPE` (or `killed by SIGPIPE`) on stderr, "
                                      "a non-zero exit status",
                 seen=(f"after reading {len(got)} bytes: " +
                       (f"still running: it is {doing}; " + "; ".join(busy) if proc.poll() is None
                        else f"exit status {proc.returncode}")),
                 details=program_lines(said),
                 hint="with SIGPIPE ignored, write() returns -1 with errno EPIPE when no reader is left, and "
                      "it will every time: that is the end, not a reason to try again (TODO 2)")
        note(f"read {len(got)} bytes, closed; then: " + "; ".join(
            line for line in said.decode(errors="replace").splitlines()[:3]))
    finally:
        if reader is not None:
            os.close(reader)
        kill_group(proc)


# ---- fifo_load ------------------------------------------------------------------------------

def make_source(tmp_path, rows: int, name="data.csv.gz"):
    """A gzipped CSV file with a header and `rows` rows; returns (path, csv bytes)."""
    lines = ["id,name,value"] + [f"{i},name-{i},{(i * 7919) % 100003}" for i in range(1, rows + 1)]
    text = ("\n".join(lines) + "\n").encode()
    path = tmp_path / name
    with gzip.open(path, "wb", compresslevel=1) as f:
        f.write(text)
    os.chmod(path, 0o644)
    return path, text


def workdir(tmp_path):
    """A directory the program may write in (the FIFO and the database go there)."""
    work = tmp_path / "work"
    work.mkdir(exist_ok=True)
    return sandbox.give(work)


def fifos_in(directory) -> list[str]:
    found = []
    for entry in os.scandir(directory):
        try:
            if stat.S_ISFIFO(entry.stat(follow_symlinks=False).st_mode):
                found.append(entry.name)
        except OSError:
            pass
    return found


def table_digest(db, table="rows") -> tuple[list[str], int, str]:
    """(column names, row count, sha256 of the rows joined by commas, in rowid order)."""
    with sqlite3.connect(f"file:{db}?mode=ro", uri=True) as conn:
        cur = conn.execute(f"SELECT * FROM {table} ORDER BY rowid")
        columns = [c[0] for c in cur.description]
        h, n = hashlib.sha256(), 0
        for row in cur:
            h.update((",".join(str(v) for v in row) + "\n").encode())
            n += 1
    return columns, n, h.hexdigest()


def load(target, tmp_path, rows, wrapper=(), timeout=T(30)):
    work = workdir(tmp_path)
    source, text = make_source(tmp_path, rows)
    db = work / "load.db"
    argv = [*wrapper, target.binary(FIFO_LOAD), "-d", work, source, db, "rows"]
    result = run_watched(argv, timeout=timeout) if not wrapper else run(argv, timeout=timeout)
    return result, work, source, db, text, tried(target, FIFO_LOAD, "-d", work, source, db, "rows")


@check("fifo_load: the rows in sqlite3 equal the source's (count and checksum), 4.7 MB through a 64 KiB pipe",
       needs=["build"])
def test_loads_rows(target, tmp_path):
    rows = 200000
    result, work, source, db, text, what = load(target, tmp_path, rows)
    want = hashlib.sha256(b"".join(l + b"\n" for l in text.splitlines()[1:])).hexdigest()
    seen, got = "", None
    if db.exists():
        try:
            got = table_digest(db)
            seen = f"table rows: columns {got[0]}, {got[1]} rows, checksum {got[2][:12]}…"
        except sqlite3.Error as e:
            seen = f"sqlite3: {e}"
    else:
        seen = "no database file"
    if result.returncode != 0 or got != (["id", "name", "value"], rows, want):
        fail("the table does not hold the source's rows" if result.returncode == 0 else
             f"fifo_load failed: {result.exit_description()}",
             tried=f"{what} ({len(text):,} bytes of CSV, gzipped)",
             expected=f"exit status 0; columns id, name, value; {rows} rows; checksum {want[:12]}…",
             seen=f"{result.exit_description()}; {seen}", details=result.stderr_lines(),
             hint=hang_hint(result, "the reader waits for an end-of-file that comes only when no write end "
                                    "is open: close fifo_load's own descriptor of the FIFO right after "
                                    "starting the writer (TODO 2)") if result.timed_out else
             ("gzip's write() failed with EAGAIN: its stdout still has the O_NONBLOCK of the open() that met "
              "the reader, so a full pipe is an error instead of a wait. Clear it with fcntl(F_SETFL) before "
              "starting the writer (TODO 2)" if b"Resource temporarily unavailable" in result.stderr else
              "sqlite3 DATABASE \".import --csv FIFO TABLE\": without --csv, .import splits at `|` and the "
              "whole line is one column (TODO 2)" if result.returncode == 0 else
              "the FIFO must exist before sqlite3 opens it (mkfifo, TODO 1), and gzip's stdout must be the "
              "FIFO, opened once sqlite3 has it open (TODO 2); the lines above say which child failed"))
    note(f"{rows} rows, {len(text):,} bytes of CSV, checksum equal, in {result.seconds:.2f} s")


@check("strace: no regular file is written but the database (the data only passes through the FIFO)",
       needs=["loads_rows"])
def test_no_temp_file(target, tmp_path):
    out = str(tmp_path / "strace.out")
    prefix = strace_prefix(out, ["write", "writev", "pwrite64", "pwritev", "mknodat", "mknod"])
    prefix.insert(1, "-y")   # each descriptor shown with the file behind it
    result, work, source, db, text, what = load(target, tmp_path, 100000, wrapper=prefix, timeout=T(60))
    calls = read_trace_file(out)
    fifos = {m.group(1) for c in calls if c.name in ("mknodat", "mknod") and "S_IFIFO" in c.args
             for m in [re.search(r'"([^"]+)"', c.args)] if m}
    written: dict[str, int] = {}
    for c in calls:
        m = re.match(r"\d+<(.*?)>", c.args)
        if c.name in ("write", "writev", "pwrite64", "pwritev") and m and (c.result or 0) > 0:
            written[m.group(1)] = written.get(m.group(1), 0) + c.result
    regular = {p: n for p, n in written.items()
               if p.startswith("/") and not p.startswith(("/dev/", str(db)))
               and not any(p == f or p.endswith(os.path.basename(f)) for f in fifos)}
    fifo_bytes = sum(n for p, n in written.items() if any(p.endswith(os.path.basename(f)) for f in fifos))
    if result.returncode != 0 or regular or not fifos:
        biggest = max(regular.items(), key=lambda kv: kv[1]) if regular else None
        fail(f"{biggest[1]:,} bytes written to the regular file {biggest[0]}" if biggest else
             "no FIFO was made (no mknod with S_IFIFO)" if not fifos else
             f"fifo_load failed under strace: {result.exit_description()}",
             tried=f"strace -f -y -e trace=write,pwrite64,…,mknodat {what}",
             expected=f"writes only to the FIFO, pipes, the terminal and {db.name} (and its journal)",
             seen="; ".join(f"{p}: {n:,} bytes" for p, n in sorted(written.items(), key=lambda kv: -kv[1])[:6]),
             details=result.stderr_lines(),
             hint="gzip's stdout must be the FIFO itself, opened with open(FIFO, O_WRONLY): the data then "
                  "lives only in the pipe's buffer until sqlite3 reads it")
    note(f"{fifo_bytes:,} bytes written into the FIFO ({', '.join(sorted(fifos))}); regular files written: "
         + ", ".join(f"{os.path.basename(p)} {n:,} bytes" for p, n in written.items()
                     if p.startswith(str(db))))


@check("fifo_load: the FIFO is removed at the end", needs=["build"])
def test_fifo_removed_at_end(target, tmp_path):
    result, work, source, db, text, what = load(target, tmp_path, 1000)
    left = fifos_in(work)
    if result.returncode != 0 or left:
        fail(f"fifo_load never ended, and the FIFO {left[0]} was left" if left and result.timed_out else
             f"the FIFO {left[0]} is still there after fifo_load ended" if left else
             f"fifo_load failed: {result.exit_description()}",
             tried=what, expected=f"exit status 0 and no FIFO left in {work}",
             seen=f"{result.exit_description()}; in {work.name}/: {sorted(os.listdir(work))}",
             details=result.stderr_lines(),
             hint=hang_hint(result, "it hung before it could remove the FIFO; the check `fifo_load: the "
                                    "rows in sqlite3…` gives the hint for that") if result.timed_out else
                  "a FIFO is a file on disk until unlink() removes it; the processes that still have it "
                  "open keep their pipe" if left else
                  "the load itself failed, before there was a FIFO to remove: its own lines above say "
                  "why, and the check `fifo_load: the rows in sqlite3…` gives the hint for that")
    note(f"left in the directory: {sorted(os.listdir(work))}")


@check("fifo_load: when sqlite3 fails before it opens the FIFO, fifo_load reports it and ends "
       "(no writer left blocked in open())", needs=["build"])
def test_reader_failure_reported(target, tmp_path):
    work = workdir(tmp_path)
    source, text = make_source(tmp_path, 200000)
    db = work / "missing" / "load.db"
    argv = [target.binary(FIFO_LOAD), "-d", work, source, db, "rows"]
    result = run_watched(argv, timeout=T(15))
    said = result.stderr.decode(errors="replace")
    line = next((l for l in said.splitlines() if l.startswith("fifo_load: sqlite3: exit status 1")), None)
    left = fifos_in(work)
    if result.timed_out or result.returncode == 0 or not line or left:
        fail("fifo_load never ended: it waits for a reader that is gone" if result.timed_out else
             f"the FIFO {left[0]} was left behind" if left and result.returncode else
             "sqlite3's failure was not reported",
             tried=f"{tried(target, FIFO_LOAD, '-d', work, source, db, 'rows')} (the database's directory "
                   "does not exist: sqlite3 exits at once, before it opens the FIFO)",
             expected="a non-zero exit status within seconds, a line `fifo_load: sqlite3: exit status 1…`, "
                      "no FIFO left",
             seen=f"{result.exit_description()}; FIFOs left: {left or 'none'}", details=result.stderr_lines(),
             hint=hang_hint(result, "open(FIFO, O_WRONLY) blocks until a reader opens the FIFO, and this one "
                                    "never will: open with O_NONBLOCK, which fails with ENXIO while there is "
                                    "no reader, and check with waitpid(WNOHANG) between tries (TODO 2)")
             if result.timed_out else
             "report the reader's status with describe() when waitpid() returns it, and unlink the FIFO "
             "on this path too (TODO 2)")
    note(line)


@check("fifo_load: Ctrl-C (SIGINT) in the middle of a load removes the FIFO, and fifo_load dies of SIGINT",
       needs=["fifo_removed_at_end"])
def test_fifo_removed_after_ctrl_c(target, tmp_path):
    work = workdir(tmp_path)
    whole, _ = make_source(tmp_path, 50000, "whole.csv.gz")
    source = make_fifo(tmp_path, "slow.csv.gz")   # the checker feeds it, and stops half-way
    db = work / "load.db"
    what = f"{tried(target, FIFO_LOAD, '-d', work, source, db, 'rows')} (its source a FIFO the checker " \
           "feeds half of the data, then holds open); SIGINT to fifo_load"
    # O_RDWR on a FIFO never blocks (Linux, fifo(7)): the checker holds a write end before gzip
    # opens the source (gzip opens it with O_NONBLOCK, and would read end-of-file at once).
    feeder = os.open(source, os.O_RDWR)
    os.write(feeder, whole.read_bytes()[:30000])
    proc, out, err = spawn_logged([target.binary(FIFO_LOAD), "-d", work, source, db, "rows"], tmp_path, "load")
    try:
        pid = program_pid(proc)
        started = wait_until(lambda: fifos_in(work) and started_children(pid, {"gzip", "sqlite3"}), T(5),
                             "the FIFO made, gzip and sqlite3 running")
        if not started:
            fail("fifo_load did not get going (gzip reading the source, sqlite3, a FIFO)", tried=what,
                 expected=f"a FIFO in {work.name}/, gzip and sqlite3 running",
                 seen=f"in {work.name}/: {sorted(os.listdir(work))}; children: "
                      f"{[comm(k) for k in procfs.children(pid)]}",
                 details=program_lines(err.read_bytes()), hint="the check `the rows …` says more")
        made = fifos_in(work)
        os.kill(pid, signal.SIGINT)
        try:
            proc.wait(timeout=T(5))
        except subprocess.TimeoutExpired:
            pass
        left = fifos_in(work)
        if proc.poll() is None or left:
            fail(f"after SIGINT the FIFO {left[0]} is still there" if left else
                 "fifo_load still ran 5 s after SIGINT",
                 tried=what, expected=f"fifo_load ends, and {made[0]} is gone",
                 seen=("still running: " + (activity(pid) or "?")) if proc.poll() is None else
                      f"exit status {proc.returncode}; in {work.name}/: {sorted(os.listdir(work))}",
                 details=program_lines(err.read_bytes()),
                 hint="the default action of SIGINT ends the program where it stands: catch SIGINT and SIGTERM "
                      "(sigaction), unlink() the FIFO in the handler, then die of the signal "
                      "(TODO 4; signal-safety(7) lists what a handler may call)")
        code = proc.returncode
        ended = f"killed by {signal.Signals(-code).name}" if code < 0 else f"exit status {code}"
        if code != -signal.SIGINT:
            fail(f"after SIGINT fifo_load removed the FIFO but ended with {ended}, not killed by SIGINT",
                 tried=what, expected=f"{made[0]} gone, and fifo_load killed by SIGINT, as its parent sees it",
                 seen=f"{ended}; in {work.name}/: {sorted(os.listdir(work))}",
                 details=program_lines(err.read_bytes()),
                 hint="end the handler the way the default action would have: kill() both children, then "
                      "signal(sig, SIG_DFL) and raise(sig). An exit status, even 130, tells a shell running "
                      "fifo_load in a script that fifo_load handled Ctrl-C itself, and the script goes on "
                      "(TODO 4)")
        note(f"{made[0]} made, then removed; fifo_load {ended}")
    finally:
        if feeder is not None:
            os.close(feeder)
        kill_group(proc)
