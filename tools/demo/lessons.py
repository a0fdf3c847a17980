"""What each lesson's demo shows: its panes, its server, and its steps.

A step is one command typed into one pane, without Enter: the instructor asks the room
what will happen, then presses Enter. In the commands, {port} is the demo's port (PORT=6000
unless given), {closed} a port where nothing listens, {sol} the lesson's solution directory
(build/solutions/NN-slug), {les} its starter's (build/lessons/NN-slug), and {scratch}-NAME
a file of the demo's own (build/demo/PORT-NAME, removed when the demo ends).

`see` is what the room must see once the step has run: a regular expression searched in
the pane `look` (the step's own pane unless named). `unseen` is what it must not see at
that moment, e.g. a reply that a blocked client must not have had. make test-demos
(tools/demo/test_demos.py) runs each demo headless and checks both, so that a demo that
stops showing its point fails CI.
"""
from dataclasses import dataclass, field

from checker import manifest


@dataclass
class Step:
    say: str                   # its line in the step list: what to ask the room
    pane: str                  # the pane it happens in (selected when the step comes)
    type: str = ""             # typed into the pane, without Enter
    press: str = "Enter"       # what the instructor then presses ("C-c": stop what runs there)
    first: tuple = ()          # keys the demo presses before typing: ("C-c",) stops the server
    see: str | None = None     # after `press`: a regex the pane `look` must show …
    look: str | None = None
    unseen: tuple | None = None    # … and (pane, regex) it must not show by then
    wait: float = 15           # how long the self-test gives `see` to appear


@dataclass
class Demo:
    number: str
    panes: list                # pane names; the first is the server's, "packets" is the capture
    server: str | None         # started at once in the first pane (None: a step starts it)
    steps: list
    builds: list = field(default_factory=list)   # make targets, {sol}/{les} allowed
    lesson: manifest.Lesson | None = None

    @property
    def sol(self) -> str:
        return f"build/solutions/{self.lesson.name}"

    def fill(self, text: str, port: int) -> str:
        return text.format(port=port, closed=port + 1, sol=self.sol,
                           les=f"build/lessons/{self.lesson.name}", scratch=f"build/demo/{port}")


NC = "nc 127.0.0.1 {port}"
NEVER_CLOSE = "build/tools/wdb_never_close 127.0.0.1 {port}"
NEVER_READ = "build/tools/wdb_never_read 127.0.0.1 {port}"
HALF_REQUEST = "build/tools/wdb_half_request 127.0.0.1 {port}"
GDB = "gdb -p $(pidof weensydb) -batch -ex 'thread apply all bt 8'"
TASKS = "ls /proc/$(pidof weensydb)/task"
WDB_PANES = ["server", "bad client", "client", "inside"]
SET_AB = r"printf 'set a 0 0 1\r\nx\r\nset b 0 0 1\r\ny\r\n' | nc -N 127.0.0.1 {port}"
STRESS = ("for i in 1 2; do for e in 'exch a b' 'exch b a'; do "
          "yes \"$e\" | head -{n} | nc -N -w 3 127.0.0.1 {{port}} | grep -c EXCHANGED & done; done; wait")
HOLD = ("/usr/bin/python3 -c 'import socket, time; s = [socket.create_connection((\"127.0.0.1\", {port})) "
        "for _ in range(1000)]; print(len(s), \"held\"); time.sleep(3600)'")
C10K_PANES = ["server", "top", "hold", "load"]


def blocked_by_a_bad_client(bad: str, fix: str) -> list:
    """v1 and v3: a bad client holds the server, a second client waits in the accept queue
    (v1) or in a thread behind the mutex (v3), until the bad client goes."""
    return [
        Step("a client that never hangs up: what does the server do?", "bad client", bad, see="connected to"),
        Step("a second client connects: is it accepted?", "client", NC),
        Step("it asks for a key: is it answered?", "client", "get a"),
        Step("the listening socket's queues: what is Recv-Q?", "inside", "ss -ltn 'sport = :{port}'",
             see=r"LISTEN\s+\d+", unseen=("client", r"(?m)^END")),
        Step(f"Ctrl-C the bad client: what happens to the second one? ({fix} fixes this)", "bad client",
             press="C-c", see=r"(?m)^END", look="client"),
    ]


def served_beside_a_bad_client(bad: str) -> list:
    return [
        Step("a bad client again: what does the server do?", "bad client", bad, see="connected to"),
        Step("a second client connects", "client", NC),
        Step("it asks for a key: is it answered this time?", "client", "get a", see=r"(?m)^END"),
        Step("one thread per connection: how many threads now?", "inside", TASKS, see=r"\d+\s+\d+\s+\d+"),
    ]


def demos() -> dict:
    d = {}

    d["01"] = Demo("01", ["server", "client", "packets"], "build/tools/course-httpd -p {port}", [
        Step("the starter on /small: what does it print, with what exit status?", "client",
             '{les}/http_get 127.0.0.1 {port} /small; echo "exit $?"'),
        Step("the same under AddressSanitizer: which variable, which line?", "client",
             "{les}/http_get-asan 127.0.0.1 {port} /small"),
        Step("/dribble arrives one byte per packet: how many recvfrom does the starter make?", "client",
             "strace -e trace=network {les}/http_get 127.0.0.1 {port} /dribble"),
        Step("… and the solution?", "client",
             "strace -e trace=network {sol}/http_get 127.0.0.1 {port} /dribble 2>&1 | grep -c recvfrom",
             see=r"(?m)^(6\d|7\d)$"),
        Step("the starter where nothing listens: what exit status?", "client",
             '{les}/http_get 127.0.0.1 {closed} /small; echo "exit $?"'),
    ], builds=["build/tools/course-httpd", "{les}/http_get", "{les}/http_get-asan", "{sol}/http_get"])

    d["02"] = Demo("02", ["server", "client", "client 2", "packets"], None, [
        Step("no server yet: what packets does a connect make, what does nc say?", "client",
             "nc -v 127.0.0.1 {port}", look="packets", see=r"SYN\s+─+▶\n\s*2\s+◀─+\s+RST"),
        Step("start the server: what does the capture show?", "server", "{sol}/echo_server -p {port}",
             see="port {port}", unseen=("packets", "connection 2")),
        Step("a client: the handshake (then type a line, and Ctrl-D)", "client", "nc -N 127.0.0.1 {port}",
             look="packets", see=r"connection 2"),
        Step("a line: how many packets?", "client", "hello", see=r"hello\s*\n\s*hello"),
        Step("Ctrl-D: who sends a FIN?", "client", press="C-d", look="packets", see=r"FIN[^\n]*\n[^\n]*FIN"),
        Step("a first client that stays …", "client", "nc 127.0.0.1 {port}"),
        Step("… and a second: is it connected? is it echoed?", "client 2", "nc 127.0.0.1 {port}"),
        Step("Ctrl-C in client 2: where did its connection wait?", "client 2",
             "ss -tn '( sport = :{port} or dport = :{port} )'", first=("C-c",)),
    ], builds=["{sol}/echo_server"])

    wdb = "{sol}/weensydb -p {port}"
    d["03"] = Demo("03", WDB_PANES, wdb, blocked_by_a_bad_client(NEVER_CLOSE, "lesson 04") + [
        Step("a client that sends half a request", "bad client", HALF_REQUEST),
        Step("a client that never reads", "bad client", NEVER_READ, first=("C-c",)),
    ])

    d["04"] = Demo("04", WDB_PANES, wdb, served_beside_a_bad_client(NEVER_CLOSE) + [
        Step("the ThreadSanitizer build", "server", "{sol}/weensydb-tsan -p {port}", first=("C-c",),
             see="port {port}"),
        Step("three writers at once: what does TSan say?", "inside",
             r"for c in 1 2 3; do yes 'set k 0 0 1' | head -300 | sed 's/$/\nx/' | "
             "nc -N 127.0.0.1 {port} > /dev/null & done; wait",
             look="server", see=r"WARNING: ThreadSanitizer: data race"),
    ], builds=["{sol}/weensydb", "{sol}/weensydb-tsan"])

    d["05"] = Demo("05", WDB_PANES, wdb, blocked_by_a_bad_client(NEVER_CLOSE, "lesson 06")[:3] + [
        Step("the threads' stacks: who holds the mutex, who waits?", "inside", GDB,
             see=r"lock_guard|__lll_lock_wait|futex_wait", unseen=("client", r"(?m)^END")),
        Step("Ctrl-C the bad client", "bad client", press="C-c", see=r"(?m)^END", look="client"),
    ])

    d["06"] = Demo("06", WDB_PANES, wdb, served_beside_a_bad_client(NEVER_READ)[:3] + [
        Step("the bad client's thread is stuck in write: who holds the mutex?", "inside",
             GDB + " -ex 'print table_mutex'", see=r"__owner = 0"),
    ])

    d["07"] = Demo("07", WDB_PANES, wdb, served_beside_a_bad_client(NEVER_CLOSE) + [
        Step("a mutex per bucket: how many mutexes?", "inside",
             "gdb -p $(pidof weensydb) -batch -ex 'print sizeof(bucket_mutex)/sizeof(bucket_mutex[0])'",
             see=r"\$1 = 1024"),   # NBUCKETS, common/wdb_table.h
    ])

    d["08"] = Demo("08", WDB_PANES, wdb, [
        Step("a and jy share bucket 140: what does exch a jy answer?", "client",
             r"printf 'set a 0 0 1\r\nx\r\nset jy 0 0 1\r\ny\r\nexch a jy\r\n' | " + NC,
             see=r"STORED\s+STORED", unseen=("client", "EXCHANGED")),
        Step("another client, another bucket: get b?", "inside",
             r"printf 'get b\r\n' | nc -N -w 2 127.0.0.1 {port}", see=r"(?m)^END"),
        Step("the threads' stacks, and the owner of bucket 140's mutex", "inside",
             "gdb -p $(pidof weensydb) -batch -ex 'thread apply all bt 8' "
             "-ex 'print bucket_mutex[140]._M_mutex.__data.__owner' 2>&1 | grep -E '^Thread|futex_wait|do_exch|^[$]1'",
             see=r"\$1 = \d+", wait=30),
        Step("get a, on a new connection: answered?", "inside",
             r"printf 'get a\r\n' | nc -N -w 2 127.0.0.1 {port}"),
    ])

    d["09"] = Demo("09", WDB_PANES, "{sol}/weensydb-tsan -p {port}", [
        Step("exch a b, then exch b a, from one client: does anything hang? what does TSan say?",
             "client", r"printf 'set a 0 0 1\r\nx\r\nset b 0 0 1\r\ny\r\nexch a b\r\nexch b a\r\n' | "
             "nc -N 127.0.0.1 {port}",
             look="server", see=r"WARNING: ThreadSanitizer: lock-order-inversion"),
        Step("the plain build", "server", "{sol}/weensydb -p {port}", first=("C-c",), see="port {port}"),
        Step("four clients, two exch a b and two exch b a: how many EXCHANGED each?", "inside",
             SET_AB + "; " + STRESS.format(n=5000)),
        Step("hung? the stacks: two threads, each at its second lock()", "client",
             GDB + " 2>&1 | grep -E '^Thread|futex_wait|do_exch'"),
    ], builds=["{sol}/weensydb", "{sol}/weensydb-tsan"])

    d["10"] = Demo("10", WDB_PANES, "{sol}/weensydb-tsan -p {port}", [
        Step("the same stress on the TSan build: a hang? a report?", "inside",
             SET_AB + "; " + STRESS.format(n=2000),
             see=r"(?ms)^2000$(.*?^2000$){3}", unseen=("server", "ThreadSanitizer"), wait=60),
    ], builds=["{sol}/weensydb", "{sol}/weensydb-tsan"])

    d["11"] = Demo("11", C10K_PANES, "build/solutions/10-weensydb-8/weensydb -p {port}", [
        Step("1,000 idle clients", "hold", HOLD, see="1000 held"),
        Step("a thread each: how much memory?", "load",
             "grep -E 'Threads|VmSize|VmRSS' /proc/$(pidof weensydb)/status", see=r"Threads:\s+1001"),
        Step("lesson 11's program: the whole table", "load",
             "{sol}/c10k_threads -p {port} -s $(pidof weensydb)",
             see=r"before any connection: \d+ thread"),
    ], builds=["build/solutions/10-weensydb-8/weensydb", "{sol}/c10k_threads"])

    loop_server = "prlimit --nofile=4096 {sol}/weensydb -p {port}"
    def top(see: str) -> Step:   # see: top's row for the server (state, %CPU)
        return Step("the server's CPU with no client at all?", "top", "top -p $(pidof weensydb)", see=see)
    load = Step("one client's round trips: p50?", "load", "build/tools/wdb_bench -p {port} -c 1 -d 3",
                see=r"p50")
    d["12"] = Demo("12", C10K_PANES, loop_server, [
        top(r"\sR\s+(\d\d|100)\.\d\s"),   # running, at 10% of a core or more
        Step("what is it doing?", "load", "timeout 1 strace -c -p $(pidof weensydb)",
             see=r"(?m)\s(\d{3,})\s+\1\s+accept$"),   # hundreds of accept() calls, every one failed
        load,
    ], builds=["{sol}/weensydb", "build/tools/wdb_bench"])
    for n in ("13", "14"):
        d[n] = Demo(n, C10K_PANES, loop_server, [
            top(r"\sS\s+0\.0\s"), load,   # asleep, 0.0% of a core
            Step("1,000 idle clients", "hold", HOLD, see="1000 held"),
            Step("the same load beside them: p50?", "load", "build/tools/wdb_bench -p {port} -c 1 -d 3",
                 see=r"(?s)p50.*p50"),
        ], builds=["{sol}/weensydb", "build/tools/wdb_bench"])
    d["13"].steps.append(Step("what select() is handed on each call", "load",
                              "timeout 1 strace -e trace=pselect6 -p $(pidof weensydb)",
                              see=r"pselect6\(\d+, \[\d+"))

    d["15"] = Demo("15", ["server", "client", "packets"],
                   "{sol}/httpd -p {port} --defer-accept --cork --no-quickack", [
        Step("a plain client: how many packets?", "client", "{sol}/http_get 127.0.0.1 {port} /"),
        Step("the client tuned too: how many packets now?", "client",
             "{sol}/http_get --defer-accept --no-quickack 127.0.0.1 {port} /",
             look="packets", see=r"connection 2[^\n]*\n(?:[^\n]*\n){5}[^\n]*\S"),
    ], builds=["{sol}/httpd", "{sol}/http_get"])

    fetch = "{sol}/fetch 127.0.0.1 {port} /big {scratch}-big"
    calls = "strace -c -e trace=recvfrom,read,pwrite64,splice "
    d["16"] = Demo("16", ["server", "client"], "build/tools/course-httpd -p {port}", [
        Step("4 MiB with a 4 KiB buffer: how many system calls?", "client", calls + fetch + " --buffer 4096",
             see=r"(?m)\d+\s+pwrite64$"),
        Step("… with 1 MiB?", "client", calls + fetch + " --buffer 1M"),
        Step("… with splice: which calls now?", "client", calls + fetch + " --splice",
             see=r"(?m)\d+\s+splice$"),
        Step("a server that sends 10 MB/s per connection", "server",
             "build/tools/course-httpd -p {port} --rate 10", first=("C-c",), see=r"port {port}"),
        Step("one connection: how long?", "client", "time " + fetch),
        Step("four connections, each a Range: how long?", "client", "time " + fetch + " --parallel 4"),
    ], builds=["build/tools/course-httpd", "{sol}/fetch"])

    d["17"] = Demo("17", ["shell", "other"], None, [
        Step("yes into head -n 1: which ends first, and how does the other end?", "shell",
             "{sol}/pipeline 'yes' 'head -n 1'", see=r"killed by SIGPIPE"),
        Step("a FIFO, and a writer: what does the shell do?", "shell",
             "rm -f {scratch}-fifo; mkfifo {scratch}-fifo; echo hi > {scratch}-fifo"),
        Step("a reader opens it", "other", "cat {scratch}-fifo", see=r"(?m)^hi$"),
    ], builds=["{sol}/pipeline"])

    admin = ("python3 -c \"import socket; s = socket.socket(socket.AF_UNIX); s.connect('\\0demo{port}'); "
             "s.send(b'stats\\n'); print(s.recv(99).decode())\"")
    d["18"] = Demo("18", ["server", "client", "inside"], "{sol}/weensydb -p {port} -w 2 -n demo{port}", [
        Step("a client connects and stays: which process holds its socket?", "client", NC),
        Step("the acceptor or a worker? (ss names the holder)", "inside", "ss -tnp 'sport = :{port}'",
             see=r"ESTAB.*weensydb"),
        Step("ask the admin socket, an abstract name: who are the workers?", "inside", admin,
             see=r"workers 2 pids \d+,\d+ handed_off 1"),
        Step("a second instance with the same name: does it start?", "inside",
             "{sol}/weensydb -p 0 -n demo{port}", see=r"EADDRINUSE"),
        Step("three writes, read on a stream and on a seqpacket socket pair", "inside",
             "{sol}/boundaries stream; {sol}/boundaries seqpacket", see=r"read 3 bytes: one"),
        Step("HTTP on the WeensyDB port: who answers?", "inside",
             "printf 'GET / HTTP/1.0\\r\\n\\r\\n' | nc -N 127.0.0.1 {port}", see=r"weensydb worker \d+"),
    ], builds=["{sol}/weensydb", "{sol}/boundaries"])

    lookup = "{sol}/udp_lookup 127.0.0.1 "
    d["19"] = Demo("19", ["server", "relay", "client"], "{sol}/udp_server -p {port} apple=red pear=green", [
        Step("three questions in datagrams: what comes back?", "client", lookup + "{port} apple pear plum",
             see=r"plum \(missing\)"),
        Step("a port where nothing listens: how does a connected socket learn it?", "client",
             lookup + "{closed} apple", see=r"connection refused"),
        Step("a relay that drops, duplicates and reorders, seeded", "relay",
             "build/tools/lossy_relay -p {closed} --to 127.0.0.1:{port} --seed 7 --drop 0.3 --dup 0.3 "
             "--reorder 0.3", see=r"port \d+"),
        Step("the same questions through it: every answer, once?", "client", lookup + "{closed} apple pear plum",
             see=r"(?s)refused.*plum \(missing\)"),
        Step("Ctrl-C the relay: what did it do to the datagrams?", "relay", press="C-c",
             see=r"seed 7: \d+ datagrams, \d+ dropped"),
    ], builds=["{sol}/udp_server", "{sol}/udp_lookup", "build/tools/lossy_relay"])

    for number, demo in d.items():
        demo.lesson = manifest.find(number)
        if not demo.builds:
            demo.builds = ["{sol}/weensydb"]
    return d


DEMOS = demos()
