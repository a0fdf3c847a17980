"""Names that resolve the way a check needs, whatever this machine's /etc/hosts says.

    with HostsFile({"multi.netcourse.test": ["127.0.0.3", "127.0.0.1"]}) as hosts:
        run(hosts.wrap([client, "multi.netcourse.test", port]), timeout=T(5))

The program runs in a mount namespace of its own (unshare -m) where a
temporary hosts file is bind-mounted over /etc/hosts, and a gai.conf over
/etc/gai.conf that keeps the listed order: getaddrinfo() otherwise sorts the
addresses (RFC 6724's rules, glibc's gai.conf), and 127.0.0.1 would come
first. Nothing outside that one process tree sees either file. Inside the
checker's network namespace this works for root and, through the user
namespace, for an ordinary user too.
"""
import ipaddress
import pathlib
import shutil
import tempfile

from .procs import run
from .report import CannotCheck
from .timeouts import T

MOUNT_AND_EXEC = ('mount --bind "$0" /etc/hosts && mount --bind "$1" /etc/gai.conf '
                  '&& shift && exec "$@"')


class HostsFile:
    def __init__(self, names: dict[str, list[str]]):
        self.names = names
        self._dir = None

    def __enter__(self):
        for path in ("/etc/hosts", "/etc/gai.conf"):
            if not pathlib.Path(path).is_file():
                raise CannotCheck(f"{path} does not exist here, so it cannot be replaced for one program")
        if shutil.which("unshare") is None:
            raise CannotCheck("unshare (util-linux) is missing")
        self._dir = tempfile.TemporaryDirectory(prefix="netcourse-hosts-")
        top = pathlib.Path(self._dir.name)
        self.hosts = top / "hosts"
        self.gai = top / "gai.conf"
        lines = ["127.0.0.1 localhost", "::1 localhost"]
        lines += [f"{address} {name}" for name, addresses in self.names.items() for address in addresses]
        self.hosts.write_text("\n".join(lines) + "\n")
        self.gai.write_text(self._precedence())
        probe = run(self.wrap(["true"]), timeout=T(10))
        if probe.returncode != 0:
            self.__exit__()
            why = probe.stderr.decode(errors="replace").strip().splitlines()
            raise CannotCheck("a private /etc/hosts needs a mount namespace (unshare -m), "
                              f"which failed here: {why[-1] if why else probe.exit_description()}")
        return self

    def _precedence(self) -> str:
        """gai.conf lines that put the addresses in the order they are listed (RFC 6724 rule 6,
        precedence, comes before the rules that would reorder them)."""
        lines, value = [], 100
        for addresses in self.names.values():
            for address in addresses:
                ip = ipaddress.ip_address(address)
                prefix = f"::ffff:{ip}/128" if ip.version == 4 else f"{ip}/128"
                lines.append(f"precedence {prefix} {value}")
                value -= 1
        lines += ["precedence ::1/128 50", "precedence ::/0 40", "precedence ::ffff:0:0/96 35"]
        return "\n".join(lines) + "\n"

    def wrap(self, argv) -> list:
        """argv, run with the private hosts file."""
        return ["unshare", "-m", "sh", "-c", MOUNT_AND_EXEC, str(self.hosts), str(self.gai), *map(str, argv)]

    def __exit__(self, *exc):
        if self._dir is not None:
            self._dir.cleanup()
            self._dir = None
