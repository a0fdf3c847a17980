"""The checker's shape stays readable: imports go one way, lessons list what they run.

- No import circle among checker's modules, counting imports inside functions too
  (a circle held together by a late import is still a circle).
- Each WeensyDB lesson's test module lists exactly the theme checks that apply to
  its Version (course.toml's [lesson.expect]): none missing, none extra.
- Every check's id and title is unique within its lesson (`--only ID`, grep TITLE).
"""
import ast
import importlib
import pathlib

import pytest

from checker import manifest
from checker.checks import blocking, deadlocks, eventloop, locks, protocol, resources
from checker.checks.version import Version

CHECKER = pathlib.Path(__file__).resolve().parents[1]
ROOT = CHECKER.parent
THEMES = (protocol, blocking, locks, deadlocks, eventloop, resources)
WEENSYDB_LESSONS = [lesson for lesson in manifest.available() if "version" in lesson.expect]


def module_name(path: pathlib.Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imports_of(path: pathlib.Path, modules: set[str]) -> set[str]:
    """The checker modules a file imports, anywhere in it (functions included)."""
    name = module_name(path)
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                up = package.split(".")[:len(package.split(".")) - (node.level - 1)]
                base = ".".join(up + ([node.module] if node.module else []))
            for alias in node.names:   # `from pkg import submodule` imports the submodule
                found.add(f"{base}.{alias.name}" if f"{base}.{alias.name}" in modules else base)
    return {m for m in found if m in modules and m != name}


def import_graph() -> dict[str, set[str]]:
    files = [p for p in CHECKER.rglob("*.py") if "selftest" not in p.parts]
    modules = {module_name(p) for p in files}
    return {module_name(p): imports_of(p, modules) for p in files}


def find_cycle(graph: dict[str, set[str]]) -> list[str]:
    """One import circle, as [a, b, …, a], or [] if there is none."""
    state: dict[str, str] = {}
    path: list[str] = []

    def visit(node) -> list[str]:
        state[node] = "open"
        path.append(node)
        for nxt in sorted(graph.get(node, ())):
            if state.get(nxt) == "open":
                return path[path.index(nxt):] + [nxt]
            if nxt not in state and (cycle := visit(nxt)):
                return cycle
        state[node] = "done"
        path.pop()
        return []

    for node in sorted(graph):
        if node not in state and (cycle := visit(node)):
            return cycle
    return []


def test_no_import_circle():
    graph = import_graph()
    assert "checker.checks.version" in graph["checker.checks.protocol"]   # the graph is read
    cycle = find_cycle(graph)
    assert not cycle, "an import circle in checker/: " + " → ".join(cycle)


def test_find_cycle_finds_one():
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": set()}) == []


def lesson_check_ids(lesson) -> list[str]:
    module = importlib.import_module(lesson.checks_module)
    return [f._nc_check["id"] for f in vars(module).values() if callable(f) and hasattr(f, "_nc_check")]


@pytest.mark.parametrize("lesson", WEENSYDB_LESSONS, ids=lambda lesson: lesson.number)
def test_lesson_lists_the_checks_that_apply(lesson):
    v = Version.of(lesson.name)
    applies = {f._nc_check["id"] for theme in THEMES for f in vars(theme).values()
               if callable(f) and hasattr(f, "_nc_check")
               and all(getattr(v, field) for field in f._nc_check["when"])}
    listed = set(lesson_check_ids(lesson))
    assert not applies - listed, f"{lesson.checks_module} does not list {sorted(applies - listed)}"
    assert not listed - applies, f"{lesson.checks_module} lists {sorted(listed - applies)}"


@pytest.mark.parametrize("lesson", manifest.available(), ids=lambda lesson: lesson.number)
def test_check_ids_and_titles_are_unique(lesson):
    module = importlib.import_module(lesson.checks_module)
    infos = [f._nc_check for f in vars(module).values() if callable(f) and hasattr(f, "_nc_check")]
    ids = [i["id"] for i in infos]
    titles = [i["title"] for i in infos]
    assert len(set(ids)) == len(ids) and len(set(titles)) == len(titles)
    ran = set()
    for info in infos:   # a check runs after the checks it needs
        assert set(info["needs"]) <= ran, f"{info['id']} needs {info['needs']}, listed after it"
        ran.add(info["id"])
