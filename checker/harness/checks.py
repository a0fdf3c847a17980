"""The @check decorator: a pytest test function becomes one line of the report.

    @check("prints the small page byte for byte", needs=["build"])
    def test_small(target, httpd): ...

`needs` names other checks (by id: the function name without `test_`) that
must pass first; if one did not, this check is not run and the student sees
the one cause instead of a cascade of follow-on failures.
"""


def check(title: str, needs=(), id: str | None = None):
    def mark(function):
        function._nc_check = {
            "title": title,
            "needs": list(needs),
            "id": id or function.__name__.removeprefix("test_"),
        }
        return function
    return mark


def check_info(item) -> dict:
    """The check's title, needs and id; plain pytest tests get sensible defaults."""
    function = getattr(item, "function", None)
    info = getattr(function, "_nc_check", None)
    if info:
        return info
    name = item.name.removeprefix("test_")
    return {"title": name.replace("_", " "), "needs": [], "id": name}


def checks_of(lesson) -> list[tuple[str, str]]:
    """[(id, title)] of a lesson's checks (a manifest.Lesson), in the order they run."""
    import importlib
    module = importlib.import_module(lesson.checks_module)
    return [(f._nc_check["id"], f._nc_check["title"]) for f in vars(module).values()
            if callable(f) and hasattr(f, "_nc_check")]
