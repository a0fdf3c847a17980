"""What bench-c10k measures: the servers, the workload, and one row of results per server."""
from dataclasses import dataclass, field

from tools.bench.toolkit import BenchServer, Running, StartError, say


@dataclass
class Server(BenchServer):
    uses_select: bool = False   # its descriptors must stay below FD_SETSIZE


SERVERS = [
    Server("WeensyDB v8 (threads)", "build/solutions/10-weensydb-8/weensydb"),
    Server("WeensyDB select", "build/solutions/13-select/weensydb", uses_select=True),
    Server("WeensyDB epoll", "build/solutions/14-epoll/weensydb"),
    Server("memcached -t 1"),
]
MEMCACHED_LABEL = SERVERS[-1].label

# The load runs' workload, for wdb_bench and memcaslap alike.
GET_PERCENT = 90
VALUE_SIZE = 100
KEYS = 1000                 # wdb_bench's keys; memcaslap keeps its own window of keys
GENERATORS = ("wdb_bench", "memcaslap")


@dataclass
class Row:
    """Everything measured on one server."""
    wdb: object = None                            # Load: the median wdb_bench run
    memcaslap: object = None                      # Load: the median memcaslap run
    idle: list = field(default_factory=list)      # Idle, one per count
    runs: dict = field(default_factory=dict)      # generator -> every Load, in order
    failed: bool = False                          # the server itself misbehaved


def start(server: Server, max_connections: int) -> Running | None:
    """The server, started on a free port; None (and a line saying why) if it would not start."""
    try:
        return server.start(max_connections)
    except StartError as e:
        say(f"{server.label} did not start: {e}")
        return None
