"""The pytest plugin that turns test results into the student's report.

Loaded by checker/run.py (`-p checker.harness.plugin`). It prints one ✓/✗ line per
check with the details under it, skips checks whose `needs` did not pass,
kills every process the checker started when the run ends (however it
ends), and writes the results as JSON for `make progress` and the self-tests.
"""
import json
import os
import signal
import time
import traceback

import pytest

from checker import manifest

from . import procs, sandbox
from .checks import check_info
from .report import CannotCheck, CheckFailed, HeldBack, take_notes
from .target import Target

INDENT = "      "


def pytest_addoption(parser):
    group = parser.getgroup("netcourse")
    group.addoption("--nc-lesson", help="lesson directory name, e.g. 01-raw-client")
    group.addoption("--nc-src-root", default="lessons")
    group.addoption("--nc-bin-root", default="build/lessons")
    group.addoption("--nc-label", default="your code")
    group.addoption("--nc-json", help="write the results here")
    group.addoption("--nc-only", action="append", default=[],
                    help="run only these checks (and what they need)")


@pytest.fixture(scope="session")
def target(request) -> Target:
    opt = request.config.getoption
    return Target(opt("--nc-lesson"), opt("--nc-src-root"), opt("--nc-bin-root"), opt("--nc-label"),
                  lazy_variants=bool(opt("--nc-only")))


class Report:
    def __init__(self, config):
        self.config = config
        self.results: dict[str, dict] = {}   # check id -> result
        self.order: list[str] = []
        self.started = time.monotonic()
        self.started_at: dict[str, float] = {}   # check id -> when its setup began

    @property
    def tr(self):
        return self.config.pluginmanager.get_plugin("terminalreporter")

    def line(self, text=""):
        if self.tr:
            self.tr.write_line(text)

    def record(self, info, outcome, lines, waiting_for=None):
        started = self.started_at.pop(info["id"], None)
        seconds = round(time.monotonic() - started, 2) if started is not None else 0.0
        self.results[info["id"]] = {"id": info["id"], "title": info["title"], "outcome": outcome,
                                    "lines": lines, "waiting_for": waiting_for, "seconds": seconds}
        self.order.append(info["id"])
        if waiting_for:
            return                     # summarised once, at the end
        mark = {"passed": "✓", "failed": "✗", "cannot": "?"}[outcome]
        self.line(f"  {mark} {info['title']}")
        for row in lines:
            self.line(INDENT + row)


_config = None   # for the keyboard-interrupt hook, which is not given the config


_interrupted = False   # a Ctrl-C or SIGTERM came (its KeyboardInterrupt may have been lost)


def _interrupt(signum, frame):
    global _interrupted
    _interrupted = True
    raise KeyboardInterrupt


def pytest_configure(config):
    global _config
    _config = config
    # A KeyboardInterrupt raised while Python runs an at-fork handler (logging's, when a
    # check starts a program) is dropped as "unraisable", and the run went on. The flag
    # makes the next check stop the run however the exception fared.
    if config.getoption("--nc-lesson"):
        signal.signal(signal.SIGINT, _interrupt)
        signal.signal(signal.SIGTERM, _interrupt)
    config._nc_report = Report(config)
    config._nc_planned = 0
    lesson = manifest.find(config.getoption("--nc-lesson") or "")
    if lesson is not None:
        sandbox.configure(lesson.limits)


def pytest_collection_modifyitems(session, config, items):
    only = config.getoption("--nc-only")
    if only:
        wanted = set(only)
        by_id = {check_info(i)["id"]: i for i in items}
        pending = list(wanted)
        while pending:   # add what the wanted checks need, transitively
            item = by_id.get(pending.pop())
            for need in check_info(item)["needs"] if item else []:
                if need not in wanted:
                    wanted.add(need)
                    pending.append(need)
        items[:] = [i for i in items if check_info(i)["id"] in wanted]


def pytest_sessionstart(session):
    # A lesson's run ends with the checker's own summary line; pytest's "3 failed, 9 passed"
    # under it would say the same in other words. (The self-tests keep pytest's line.)
    reporter = session.config.pluginmanager.get_plugin("terminalreporter")
    if session.config.getoption("--nc-lesson") and reporter is not None:
        reporter.summary_stats = lambda: None


def pytest_collection_finish(session):
    report = session.config._nc_report
    lesson = session.config.getoption("--nc-lesson")
    session.config._nc_planned = len(session.items)
    if lesson and session.items:
        entry = manifest.find(lesson)
        title = entry.heading if entry else lesson
        label = session.config.getoption("--nc-label")
        src = session.config.getoption("--nc-src-root")
        report.line(f"[checker] {title}")
        report.line(f"[checker] checking {label} in {src}/{lesson}/")
        if sandbox.active():
            report.line(f"[checker] {sandbox.describe()}")
        netns = os.environ.get("NETCOURSE_NETNS", "")
        if netns.startswith("none"):
            report.line(f"[checker] no private network namespace here ({netns[len('none: '):]}): "
                        "the checks use this machine's own loopback")


def pytest_runtest_setup(item):
    if _interrupted:
        raise KeyboardInterrupt
    report = item.config._nc_report
    report.started_at[check_info(item)["id"]] = time.monotonic()
    for need in check_info(item)["needs"]:
        result = report.results.get(need)
        if result is None or result["outcome"] != "passed":
            title = result["title"] if result else need
            item._nc_waiting_for = title
            pytest.skip(f"waits for “{title}”")


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    report = outcome.get_result()
    info = check_info(item)
    nc = item.config._nc_report
    if call.when == "setup" and report.skipped:
        nc.record(info, "waiting", [], waiting_for=getattr(item, "_nc_waiting_for", "an earlier check"))
        return
    if call.when != "call" and not (call.when == "setup" and report.failed):
        return
    notes = take_notes()
    error = call.excinfo.value if call.excinfo else None
    if error is None:
        nc.record(info, "passed", notes)
    elif isinstance(error, CannotCheck):
        report.outcome = "skipped"
        report.longrepr = (str(item.path), 0, f"cannot check: {error.why}")
        nc.record(info, "cannot", error.lines())
    elif isinstance(error, HeldBack):
        report.outcome = "skipped"
        report.longrepr = (str(item.path), 0, f"held back: {error.cause}")
        nc.record(info, "waiting", [], waiting_for=error.cause)
    elif isinstance(error, CheckFailed):
        nc.record(info, "failed", error.lines() + notes)   # notes: context, e.g. a retry
    elif isinstance(error, (pytest.skip.Exception, KeyboardInterrupt)):
        pass
    else:
        nc.record(info, "failed", _unexpected(error, call.excinfo))


def _unexpected(error, excinfo) -> list[str]:
    """An exception no check expected: show it plainly, with where it happened."""
    frames = traceback.extract_tb(excinfo.tb)
    where = next((f for f in reversed(frames) if "/checker/checks/" in f.filename), frames[-1])
    text = str(error) or type(error).__name__
    if isinstance(error, ConnectionRefusedError):
        text += " (nothing was listening: did your server stop, or never call listen()?)"
    elif isinstance(error, ConnectionResetError):
        text += " (your program reset the connection: did it exit or crash?)"
    elif isinstance(error, TimeoutError):
        text += " (your program did not answer in time)"
    return [f"{type(error).__name__}: {text}",
            f"(raised at {where.filename.split('/checker/')[-1]}:{where.lineno}: {where.line})"]


def pytest_report_teststatus(report, config):
    # The ✓/✗ lines are the progress report: no pytest dots or letters.
    if report.when == "call" or (report.when == "setup" and report.outcome != "passed"):
        return report.outcome, "", ""
    return None


def pytest_terminal_summary(terminalreporter, exitstatus, config):
    report = config._nc_report
    results = list(report.results.values())
    waiting: dict[str, int] = {}
    for r in results:
        if r["waiting_for"]:
            waiting[r["waiting_for"]] = waiting.get(r["waiting_for"], 0) + 1
    for cause, n in waiting.items():
        report.line(f"  · {n} more check{'s' if n > 1 else ''} will run once “{cause}” passes")
    lesson = config.getoption("--nc-lesson")
    if not lesson:
        return
    passed = sum(r["outcome"] == "passed" for r in results)
    failed = sum(r["outcome"] == "failed" for r in results)
    cannot = sum(r["outcome"] == "cannot" for r in results)
    number = lesson[:2]
    if exitstatus == pytest.ExitCode.INTERRUPTED:
        state = f"interrupted: {config._nc_planned - len(results)} checks did not run"
    elif failed or waiting:
        state = f"lesson {number} not complete yet · `make hint-{number}` for a hint"
    elif cannot:
        state = f"lesson {number}: every check that could run here passes ({cannot} could not run)"
    else:
        state = f"lesson {number} complete ✓"
    # Lessons whose program is wrong on purpose count checks that find the bug as passing.
    verb = "as expected" if any("(expected:" in r["title"] for r in results) else "pass"
    report.line(f"[checker] {passed} of {len(results)} checks {verb} · {state}")


def pytest_runtest_teardown(item):
    # Between checks no program under test runs: whatever does was left behind.
    left = sandbox.sweep()
    if left:
        item.config._nc_report.line(f"{INDENT}(left behind by the programs: {'; '.join(left[:3])})")


def pytest_sessionfinish(session, exitstatus):
    procs.kill_all()
    report = session.config._nc_report
    path = session.config.getoption("--nc-json")
    if path:
        with open(path, "w") as f:
            json.dump({"lesson": session.config.getoption("--nc-lesson"),
                       "label": session.config.getoption("--nc-label"),
                       "interrupted": exitstatus == pytest.ExitCode.INTERRUPTED,
                       "checks": [report.results[i] for i in report.order]}, f, indent=1)


@pytest.hookimpl(trylast=True)
def pytest_keyboard_interrupt(excinfo):
    procs.kill_all()
    print("\n[checker] interrupted: every process the checker started has been stopped")
    # pytest's own "!!! KeyboardInterrupt !!!" banner and traceback say nothing more.
    reporter = _config.pluginmanager.get_plugin("terminalreporter") if _config else None
    if reporter is not None:
        reporter._report_keyboardinterrupt = lambda: None


def pytest_unconfigure(config):
    procs.kill_all()
