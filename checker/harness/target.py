"""The program under check: where its sources are, where its binaries go, how to build it."""
import os
import pathlib
import shutil
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
            self._reuse_the_solutions(name, [variant])
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
        for name in names:
            self._reuse_the_solutions(name, variants)
        targets = [self.shown(self._path(n, v)) for n in names for v in variants]
        make(targets, what=f"{self.label} in {self.shown(self.source_dir)}")

    def _reuse_the_solutions(self, name: str, variants):
        """A program whose sources are byte for byte the solution's gets a copy of the
        solution's binary instead of compiling: a mutant of one lesson 19 program leaves the
        other three as they were. Its sources are every file of the lesson's folder but the
        other programs' NAME.cc and the texts (.md): its NAME.cc, the parts, the headers,
        anything it might include. The copy is newer than the sources, so make leaves it be."""
        solution = ROOT / "solutions" / self.lesson
        if self.source_dir == solution:
            return
        others = {f"{other}.cc" for other in self.entry.programs if other != name}
        files = {p.name for d in (solution, self.source_dir) for p in d.iterdir()
                 if p.suffix != ".md" and p.name not in others}
        for file in files:
            mine, theirs = self.source_dir / file, solution / file
            if not (mine.is_file() and theirs.is_file() and mine.read_bytes() == theirs.read_bytes()):
                return
        for variant in variants:
            built = ROOT / "build" / "solutions" / self.lesson / self._path(name, variant).name
            up_to_date = subprocess.run(["make", "-q", "--no-print-directory", self.shown(built)],
                                        cwd=ROOT, capture_output=True, timeout=T(60)).returncode == 0
            if built.is_file() and up_to_date:
                path = self._path(name, variant)
                path.parent.mkdir(parents=True, exist_ok=True)
                shutil.copyfile(built, path.with_name(path.name + ".tmp"))
                path.with_name(path.name + ".tmp").chmod(0o755)
                path.with_name(path.name + ".tmp").replace(path)   # never onto a running binary


def make(targets, what: str):
    """Runs make for the given targets; CheckFailed showing the first compiler errors if it fails."""
    try:
        # Programs compiled side by side, each one's messages kept together (--output-sync).
        jobs = f"-j{min(len(targets), os.cpu_count() or 1)}"
        result = subprocess.run(["make", "--no-print-directory", jobs, "--output-sync=target", *targets],
                                cwd=ROOT, capture_output=True, timeout=T(600))
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
