"""The self-tests' order: the solution, starter and mutant runs start in the background as soon as
the tests are collected (checker/selftest/lesson_runs.py), and the tests that look at
them go last, so the other self-tests run while the runs go on."""
import pytest

from checker.selftest import lesson_runs


def pytest_collection_modifyitems(session, config, items):
    items.sort(key=lesson_runs.uses_runs)   # stable: the order within each part is kept


def pytest_collection_finish(session):
    if not session.config.option.collectonly:
        lesson_runs.BACKGROUND.start(session.items)


def pytest_sessionfinish(session, exitstatus):
    lesson_runs.BACKGROUND.stop()


@pytest.fixture(scope="session")
def runs(request):
    """The selected runs' results, by (lesson, mutant name or "starter" or "solution"): they
    began in the background when the tests were collected; this waits for the last of them."""
    return lesson_runs.BACKGROUND.results(request.session.items)
