"""What a failed (or passed) check tells the student.

A check fails by raising CheckFailed with: what went wrong (one line), what
the checker tried, what it expected, what it saw, and a hint. The plugin
prints them as

    ✗ <check title>
        <what>
        tried     <tried>
        expected  <expected>
        got       <seen>
        hint: <hint>
"""
from dataclasses import dataclass, field

_notes: list[str] = []


@dataclass
class CheckFailed(AssertionError):
    what: str
    tried: str | None = None
    expected: str | None = None
    seen: str | None = None
    hint: str | None = None
    details: list[str] = field(default_factory=list)  # extra lines, already formatted

    def __str__(self):
        return self.what

    def lines(self) -> list[str]:
        out = [self.what]
        for label, value in (("tried", self.tried), ("expected", self.expected), ("got", self.seen)):
            if value is not None:
                out.extend(_label(label, value))
        out.extend(self.details)
        if self.hint:
            out.append(f"hint: {self.hint}")
        return out


class HeldBack(Exception):
    """The check is not run because an earlier check's failure would fail it for the same
    reason (e.g. the program never exits): the student sees one cause, not a cascade."""

    def __init__(self, cause: str):
        super().__init__(cause)
        self.cause = cause   # the title of the check that failed first


class CannotCheck(Exception):
    """The check cannot run on this machine (e.g. no packet capture). Not the student's fault."""

    def __init__(self, why: str, fix: str | None = None):
        super().__init__(why)
        self.why, self.fix = why, fix

    def lines(self):
        return [f"cannot check this here: {self.why}"] + ([f"to fix: {self.fix}"] if self.fix else [])


def _label(label: str, value: str) -> list[str]:
    rows = str(value).splitlines() or [""]
    return [f"{label:<9} {rows[0]}"] + [f"{'':<9} {row}" for row in rows[1:]]


def fail(what, *, tried=None, expected=None, seen=None, hint=None, details=None):
    raise CheckFailed(what, tried, expected, seen, hint, list(details or []))


def cannot_check(why, fix=None):
    raise CannotCheck(why, fix)


def note(text: str):
    """A line printed under the current check if it passes (e.g. what TSan reported)."""
    _notes.append(text)


def take_notes() -> list[str]:
    taken = list(_notes)
    _notes.clear()
    return taken


# ---- showing bytes ----------------------------------------------------------

def _escape_byte(b: int) -> str:
    special = {0x0a: "\\n", 0x0d: "\\r", 0x09: "\\t", 0x5c: "\\\\"}
    if b in special:
        return special[b]
    if 0x20 <= b < 0x7f:
        return chr(b)
    return f"\\x{b:02x}"


def _escaped(data: bytes) -> list[str]:
    """One printable token per byte, so columns line up for the caret."""
    return [_escape_byte(b) for b in data]


def show_bytes(data: bytes, limit: int = 60) -> str:
    """Bytes as one printable line: escapes for \\r \\n and non-ASCII, '…' past `limit`."""
    if data is None:
        return "(nothing)"
    if not data:
        return "(no bytes)"
    text = "".join(_escaped(data[:limit]))
    return text + (f"… ({len(data)} bytes in all)" if len(data) > limit else "")


def first_difference(a: bytes, b: bytes) -> int | None:
    """Index of the first byte where a and b differ; None if they are equal."""
    for i, (x, y) in enumerate(zip(a, b)):
        if x != y:
            return i
    return None if len(a) == len(b) else min(len(a), len(b))


def caret_diff(expected: bytes, got: bytes, width: int = 50) -> list[str]:
    """Three aligned lines: expected, got, and a caret under the first difference.

    Long inputs are cut to a window around the difference, with '…' marking the cut."""
    at = first_difference(expected, got)
    if at is None:
        return []
    start = max(0, at - width // 2)
    def window(data):
        tokens = _escaped(data[start:start + width])
        prefix = "…" if start > 0 else ""
        suffix = "…" if start + width < len(data) else ""
        return prefix, tokens, suffix
    ep, et, es = window(expected)
    gp, gt, gs = window(got)
    column = len(ep) + sum(len(t) for t in et[:at - start])
    got_text = gp + "".join(gt) + gs if got else "(no bytes)"
    return [f"expected  {ep}{''.join(et)}{es}",
            f"got       {got_text}",
            f"          {' ' * column}^ first difference at byte {at}"]


def expect_bytes(got: bytes, expected: bytes, *, what: str, tried: str, sent: bytes | None = None,
                 hint: str | None = None, details=None):
    """Fails unless got == expected, showing both with a caret at the first difference."""
    if got == expected:
        return
    lines = []
    if sent is not None:
        lines.append(f"sent      {show_bytes(sent)}")
    lines += caret_diff(expected, got)
    at = first_difference(expected, got)
    if len(got) < len(expected) and got == expected[:len(got)]:
        summary = f"got only the first {len(got)} of {len(expected)} bytes"
    elif len(got) > len(expected) and got[:len(expected)] == expected:
        summary = f"got {len(got) - len(expected)} bytes more than the {len(expected)} expected"
    else:
        summary = f"got {len(got)} bytes, expected {len(expected)}; they differ from byte {at} on"
    raise CheckFailed(what, tried=tried, details=lines + [summary] + list(details or []), hint=hint)
