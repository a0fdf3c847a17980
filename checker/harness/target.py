"""The program under check: where its sources are, where its binaries go, how to build it."""
import pathlib
import subprocess

from checker import manifest

from .procs import program_lines
from .report import CheckFailed
from .timeouts import T

ROOT = pathlib.Path(__file__).resolve().parents[2]


class Target:
    """One lesson's code of one kind: the student's, the solution, a starter or a mutant.

    Sources live in SRC_ROOT/LESSON/, binaries go to BIN_ROOT/LESSON/ (the
    Makefile's rules map one to the other)."""

    def __init__(self, lesson: str, src_root: str, bin_root: str, label: str,
                 lazy_variants: bool = False):
        self.lesson = lesson                       # e.g. "01-raw-client"
        self.src_root = ROOT / src_root
        self.bin_root = ROOT / bin_root
        self.label = label                         # e.g. "your code", "the solution"
        # With --only, build() makes the plain programs alone, and another variant (asan,
        # tsan) is built when a check first asks for it: a run of two checks compiles what
        # those two use. (The self-test runs every mutant this way: a lesson 16 mutant's run
        # went from 7.9 s to 3.3 s, the asan build it never used left out.)
        self.lazy_variants = lazy_variants
        self._built: set[tuple[str, str]] = set()

    @property
    def number(self) -> str:
        return self.lesson[:2]

    @property
    def source_dir(self) -> pathlib.Path:
        return self.src_root / self.lesson

    def binary(self, name: str, variant: str = "plain") -> pathlib.Path:
        path = self._path(name, variant)
        if (self.lazy_variants and variant != "plain" and (name, variant) not in self._built
                and variant in self.entry.variants):
            self._built.add((name, variant))
            make([self.shown(path)], what=f"{self.label} ({variant}) in {self.shown(self.source_dir)}")
        return path

    def _path(self, name: str, variant: str) -> pathlib.Path:
        suffix = "" if variant == "plain" else f"-{variant}"
        return self.bin_root / self.lesson / f"{name}{suffix}"

    def shown(self, path) -> str:
        """A path as the student would type it (relative to the repository)."""
        try:
            return str(pathlib.Path(path).relative_to(ROOT))
        except ValueError:
            return str(path)

    @property
    def entry(self) -> manifest.Lesson:
        """The lesson's entry in course.toml."""
        lesson = manifest.find(self.lesson)
        if lesson is None:
            raise LookupError(f"course.toml has no lesson {self.lesson!r}")
        return lesson

    def build(self, names=None, variants=None):
        """Builds each program in each variant (by default the lesson's programs and variants,
        as course.toml lists them); CheckFailed with the compiler's errors if not."""
        names = self.entry.programs if names is None else names
        if variants is None:
            variants = self.entry.variants
            if self.lazy_variants:
                variants = [v for v in variants if v == "plain"] or variants[:1]
        targets = [self.shown(self._path(n, v)) for n in names for v in variants]
        make(targets, what=f"{self.label} in {self.shown(self.source_dir)}")


def make(targets, what: str):
    """Runs make for the given targets; CheckFailed showing the first compiler errors if it fails."""
    try:
        result = subprocess.run(["make", "--no-print-directory", *targets], cwd=ROOT,
                                capture_output=True, timeout=T(600))
    except subprocess.TimeoutExpired:
        raise CheckFailed(f"building {what} took more than {T(600):.0f}s") from None
    if result.returncode != 0:
        output = result.stderr or result.stdout
        errors = [line for line in output.decode(errors="replace").splitlines()
                  if "error" in line or "undefined reference" in line]
        shown = "\n".join(errors[:10]).encode() if errors else output
        raise CheckFailed(f"{what} does not compile", tried="make " + " ".join(targets),
                          details=program_lines(shown, limit=20, label="compiler"),
                          hint="fix the first error first: later ones are often caused by it")


def tool(name: str) -> pathlib.Path:
    """A course program or library (tools/programs/, tools/bench/), built if needed."""
    path = ROOT / "build" / "tools" / name
    make([str(path.relative_to(ROOT))], what=f"the course tool {name}")
    return path
