"""Packet captures on the loopback interface, with a probe barrier.

dumpcap starts quickly, but a capture is not trusted until it has *seen*
something: after starting it, the checker sends a UDP probe to 127.0.0.1:9
every 50 ms until one shows up in the capture (so no packet of the test can
be missed), and before stopping it sends one more and waits for it (so every
packet sent before has arrived). No sleeps, no guesses.

    with Capture(ports=[port]) as cap:
        ...traffic...
    packets = cap.tcp_packets()      # read back with tshark

The capture is kept in memory (cap.pcap, the bytes of a .pcap file) and read
back through tshark's standard input: no temporary file or directory is made,
so none is left behind by a failed check or a Ctrl-C. Capture(ports,
directory=D) also writes it to D/capture.pcap (cap.path), for a caller that
keeps its own files.

The checker normally runs inside its own network namespace (checker/run.py),
so the loopback interface carries nothing but the test's own traffic.
"""
import os
import shutil
import socket
import subprocess
import threading
import uuid
from dataclasses import dataclass

from .procs import kill_group, spawn
from .report import CannotCheck
from .timeouts import T
from .waiting import Deadline, wait_until

PROBE_PORT = 9   # "discard": nothing listens there, and the filter lets it through
_failed_before = None   # why capturing failed, so the next checks just refer to it


@dataclass
class Packet:
    number: int
    src_port: int
    dst_port: int
    syn: bool
    ack: bool
    fin: bool
    rst: bool
    length: int          # TCP payload bytes
    seq: int = 0         # relative sequence number (a retransmission repeats one)

    @property
    def kind(self) -> str:
        """SYN, SYN-ACK, RST, DATA, FIN or ACK (a pure ACK: no payload, no other flag)."""
        if self.rst:
            return "RST"
        if self.syn:
            return "SYN-ACK" if self.ack else "SYN"
        if self.length > 0:
            return "DATA"
        if self.fin:
            return "FIN"
        return "ACK"

    def from_client(self, server_port: int) -> bool:
        return self.dst_port == server_port

    def describe(self, server_port: int) -> str:
        """e.g. "#4   client → server  DATA 6 bytes +FIN"."""
        direction = "client → server" if self.from_client(server_port) else "server → client"
        text = self.kind + (f" {self.length} bytes" if self.length else "")
        if self.fin and self.kind != "FIN":
            text += " +FIN"
        return f"#{self.number:<3} {direction}  {text}"


def describe_all(packets, server_port: int, limit: int = 16) -> list[str]:
    rows = [p.describe(server_port) for p in packets[:limit]] or ["(no TCP packets)"]
    if len(packets) > limit:
        rows.append(f"… {len(packets) - limit} more")
    return rows


def capture_unavailable_reason() -> str | None:
    if shutil.which("dumpcap") is None or shutil.which("tshark") is None:
        return "dumpcap/tshark are not installed (Debian package: tshark)"
    return None


class Capture:
    def __init__(self, ports=(), directory=None):
        self.ports = list(ports)
        self.path = os.path.join(directory, "capture.pcap") if directory else None
        self.token = uuid.uuid4().hex[:12]
        self._data = bytearray()   # the whole capture, pcap format
        self._file = None
        self._seen = b""
        self._lock = threading.Lock()
        self._proc = None
        self._reader = None
        self._probes = 0

    @property
    def filter(self) -> str:
        tcp = " or ".join(f"tcp port {p}" for p in self.ports) or "tcp"
        return f"({tcp}) or (udp dst port {PROBE_PORT})"

    # -- lifecycle --
    def __enter__(self):
        self.start()
        return self

    def __exit__(self, exc_type, *exc):
        if exc_type is None:
            self.stop()
        else:
            self._kill()

    def start(self):
        global _failed_before
        reason = capture_unavailable_reason()
        if reason:
            raise CannotCheck(reason, "make deps")
        if _failed_before:
            raise CannotCheck("packet capture does not work here: see the first capture check above")
        if self.path:
            self._file = open(self.path, "wb")
        self._proc = spawn(["dumpcap", "-q", "-i", "lo", "-f", self.filter, "-P", "-w", "-"],
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()
        if not self._probe_until_seen(T(10)):
            err = self._stop_dumpcap()
            _failed_before = _explain_dumpcap_failure(err)
            raise CannotCheck(_failed_before, _capture_fix())

    def stop(self):
        """Waits for a last probe (so every earlier packet is in), then stops dumpcap."""
        arrived = self._probe_until_seen(T(5))
        self._stop_dumpcap()
        if not arrived:
            raise CannotCheck("the capture stopped seeing packets before the test ended")

    def _kill(self):
        if self._proc:
            self._stop_dumpcap()

    def _stop_dumpcap(self) -> bytes:
        kill_group(self._proc)
        self._reader.join(timeout=T(5))
        if self._file:
            self._file.close()
        return self._proc.stderr.read() if self._proc.stderr else b""

    # -- the probe barrier --
    def _read(self):
        fd = self._proc.stdout.fileno()
        while chunk := os.read(fd, 65536):
            if self._file:
                self._file.write(chunk)
                self._file.flush()
            with self._lock:
                self._data += chunk
                # Keep only a tail: enough to find a probe token split across reads.
                self._seen = (self._seen + chunk)[-(1 << 20):]

    def _probe_until_seen(self, timeout: float) -> bool:
        self._probes += 1
        token = f"netcourse-probe-{self.token}-{self._probes}".encode()
        deadline = Deadline(timeout)
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as udp:
            while not deadline.passed():
                if self._proc.poll() is not None and not self._reader.is_alive():
                    return False
                udp.sendto(token, ("127.0.0.1", PROBE_PORT))
                # A probe can be lost while dumpcap starts: send another every 50 ms.
                if wait_until(lambda: self._has_seen(token), min(0.05, deadline.left()),
                              "the probe in the capture", interval=0.005):
                    return True
        return False

    def _has_seen(self, token: bytes) -> bool:
        with self._lock:
            return token in self._seen

    # -- reading it back --
    @property
    def pcap(self) -> bytes:
        """The capture so far, as the bytes of a .pcap file."""
        with self._lock:
            return bytes(self._data)

    def tcp_packets(self) -> list["Packet"]:
        """Every TCP packet captured, in order, via tshark."""
        return read_tcp_packets(self.pcap)


def read_tcp_packets(source) -> list[Packet]:
    """The TCP packets of a capture, in order, read with tshark. source: a .pcap file's
    path, or its bytes (given to tshark on its standard input)."""
    fields = ["frame.number", "tcp.srcport", "tcp.dstport", "tcp.flags.syn", "tcp.flags.ack",
              "tcp.flags.fin", "tcp.flags.reset", "tcp.len", "tcp.seq"]
    in_memory = isinstance(source, (bytes, bytearray))
    cmd = ["tshark", "-r", "-" if in_memory else str(source), "-Y", "tcp", "-T", "fields",
           "-E", "separator=,"]
    for f in fields:
        cmd += ["-e", f]
    out = subprocess.run(cmd, input=bytes(source) if in_memory else None, capture_output=True,
                         timeout=T(30)).stdout.decode()
    flag = lambda s: s in ("1", "True")
    packets = []
    for row in out.splitlines():
        v = row.split(",")
        if len(v) == len(fields):
            packets.append(Packet(int(v[0]), int(v[1]), int(v[2]), flag(v[3]), flag(v[4]),
                                  flag(v[5]), flag(v[6]), int(v[7] or 0), int(v[8] or 0)))
    return packets


def _explain_dumpcap_failure(stderr: bytes) -> str:
    text = stderr.decode(errors="replace").strip().splitlines()
    message = next((l for l in text if "ermission" in l or "don't have" in l), text[-1] if text else "")
    return f"packet capture on lo does not work here ({message or 'dumpcap saw no packets'})"


def _capture_fix() -> str:
    netns = os.environ.get("NETCOURSE_NETNS", "")
    if os.geteuid() != 0 and netns != "1":
        why = f"the checker could not make its own network namespace ({netns[6:]}); " \
            if netns.startswith("none: ") else ""
        return why + ("allow unprivileged user namespaces so the checker can capture in its own "
                "(Ubuntu: sudo sysctl kernel.apparmor_restrict_unprivileged_userns=0), or add "
                "yourself to the wireshark group (sudo dpkg-reconfigure wireshark-common), or run "
                "the checker as root (sudo make lesson-NN: your programs then run as a user of "
                "their own, with no privileges)")
    return "check that `dumpcap -i lo` works in this environment"
