"""What a WeensyDB lesson expects of its program, and how its checks are bound to it.

Lessons 03-10 and 12-14 are WeensyDB versions 1 to 11. They run checks from the
same theme modules (protocol, blocking, locks, deadlocks, eventloop); what
differs is what each version is *expected* to show, written in course.toml
under the lesson's [lesson.expect]. A version that is wrong on purpose expects
its bug, and the check passes when the bug is seen:

    ✓ TSan finds the race in the table (expected: lesson 05 fixes it)

A check is a top-level function of a theme module that takes the lesson's Version:

    @check("no mutex is held during network I/O", needs=["protocol"], when="mutexes",
           bug=("lock_across_io", "a mutex is held during network I/O"))
    def test_no_lock_across_io(target, v): ...

and a lesson's test module lists the checks it runs, in the order they run:

    globals().update(lesson_checks("05-weensydb-3", protocol.test_build, ...))
"""
from dataclasses import dataclass, fields

from checker import manifest
from checker.harness import check as harness_check


@dataclass(frozen=True)
class Version:
    """One lesson's WeensyDB version: course.toml's [lesson.expect], and its build variants."""
    lesson: str                   # the lesson's name, e.g. "05-weensydb-3"
    number: int                   # WeensyDB version, 1..11 (`version` in course.toml)
    variants: tuple = ("plain",)  # the builds its checks use (`variants` in course.toml)
    blocks: str | None = None     # a bad client blocks everyone: the lesson that fixes it
    races: str | None = None      # TSan finds a data race: the lesson that fixes it
    lock_across_io: str | None = None   # a mutex is held during network I/O: who fixes it
    self_deadlock: str | None = None    # exch in one bucket hangs: who fixes it
    abba: str | None = None       # exch a b ∥ exch b a deadlocks: who fixes it
    threads: bool = True          # one thread per connection (v1: none)
    mutexes: bool = True          # uses mutexes at all (v1, v2: no)
    bucket_locks: bool = False    # a mutex per bucket (v5 on)
    exch: bool = True             # answers exch (v5 refuses it: "SERVER_ERROR …")
    event_loop: bool = False      # one thread, non-blocking sockets (v9-v11, lessons 12-14)
    idle_burn: str | None = None  # the loop never sleeps (v9): the lesson that fixes it
    fd_setsize: bool = False      # refuses clients select() cannot watch (v10)
    many_connections: int = 0     # holds this many idle connections (v11: 10,000)

    @classmethod
    def of(cls, lesson: str) -> "Version":
        """The Version course.toml describes for a lesson ("05", "05-weensydb-3")."""
        entry = manifest.find(lesson)
        if entry is None or "version" not in entry.expect:
            raise LookupError(f"course.toml has no WeensyDB lesson {lesson!r} "
                              "(one with `version` under [lesson.expect])")
        expect = dict(entry.expect)
        number = expect.pop("version")
        known = {f.name for f in fields(cls)} - {"lesson", "number", "variants"}
        unknown = sorted(set(expect) - known)
        if unknown:
            raise ValueError(f"course.toml, lesson {entry.name}: unknown expectation(s) "
                             f"{', '.join(unknown)} (known: version, {', '.join(sorted(known))})")
        v = cls(lesson=entry.name, number=number, variants=entry.variants, **expect)
        missing = [b for b in v.builds_needed() if b not in v.variants]
        if missing:
            raise ValueError(f"course.toml, lesson {entry.name}: variants lacks "
                             f"{', '.join(missing)}, which its checks run")
        return v

    def builds_needed(self) -> list[str]:
        """The builds this version's checks run: TSan for threads (races, exch under stress),
        ASan for select's FD_SETSIZE (an fd_set written past its end)."""
        return ["plain"] + (["tsan"] if self.threads else []) + (["asan"] if self.fd_setsize else [])

    @property
    def epoll(self) -> bool:
        """It sleeps in epoll_wait() (v11): the event loop that holds 10,000 connections. A
        stop and continue (Ctrl-Z, fg) ends an epoll_wait() with EINTR even when no signal
        handler runs; select() and poll() are restarted instead (measured, signal(7))."""
        return self.event_loop and self.many_connections > 0

    @property
    def own_connection_code(self) -> bool:
        """The student writes handle_connection and the accept loop (v1-v4, lessons 03-06):
        where a descriptor can leak. Later versions change only the locking."""
        return self.number <= 4 and not self.event_loop

    @property
    def own_accept_loop(self) -> bool:
        """The version whose lesson teaches a failed accept() (v2, lesson 04: EMFILE)."""
        return self.number == 2

    @property
    def ordered_exch(self) -> bool:
        """exch locks two buckets, in one order, with no deadlock left on purpose (v8)."""
        return self.exch and self.bucket_locks and self.abba is None and self.self_deadlock is None

    @property
    def variant_names(self) -> str:
        return ", ".join(self.variants)

    @property
    def workload_extra(self) -> str:
        """What the race check's clients send besides set/get/delete, for its title."""
        return ", 5-key get" + (", exch" if self.exch else "")

    @property
    def commands(self) -> str:
        """The commands this version answers, for a title."""
        return "set, get, delete" + (", exch" if self.exch else "")

    def title(self, info: dict) -> str:
        """A check's title for this version: its bug's, when the version has it on purpose."""
        if info["bug"]:
            field, bug_title = info["bug"]
            fixed_by = getattr(self, field)
            if fixed_by:
                return f"{bug_title} (expected: {fixed_by} fixes it)"
        return info["title"].format(v=self)


def check(title: str, needs=(), *, bug: tuple[str, str] | None = None, when: str | tuple = ()):
    """checker.harness's @check, for a check that takes the lesson's Version (`v`).

    title  what the check proves, as the student reads it; {v.…} is filled in from
           the Version, e.g. "{v.commands} answer as the protocol says"
    bug    (FIELD, BUG TITLE): a version whose FIELD names the lesson that fixes it
           has this bug on purpose; there the check is titled "BUG TITLE (expected:
           lesson NN fixes it)", and it must see the bug to pass
    when   the Version field(s) that must be true for the check to apply (a lesson
           that lists a check that does not apply to it is an error)"""
    def mark(function):
        harness_check(title, needs)(function)
        function._nc_check.update(bug=bug, when=(when,) if isinstance(when, str) else tuple(when))
        return function
    return mark


def lesson_checks(lesson: str, *checks) -> dict:
    """The given checks bound to the lesson's Version, as {test name: test function(target)}.
    `globals().update(lesson_checks(...))` in a lesson's test module lets pytest collect
    them, in the order given."""
    v = Version.of(lesson)
    return {function.__name__: bind(function, v) for function in checks}


def bind(function, v: Version):
    info = function._nc_check
    off = [field for field in info["when"] if not getattr(v, field)]
    if off:
        raise ValueError(f"{v.lesson} lists the check {info['id']}, which applies only to versions "
                         f"with {' and '.join(info['when'])} (course.toml says {off[0]} is off)")

    def run_check(target):
        return function(target, v)

    run_check.__name__, run_check.__qualname__ = function.__name__, function.__qualname__
    run_check.__doc__ = function.__doc__
    run_check._nc_check = {"title": v.title(info), "needs": info["needs"], "id": info["id"]}
    return run_check
