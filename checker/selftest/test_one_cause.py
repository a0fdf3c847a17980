"""A program that never exits is one cause, reported once and quickly.

Lesson 01's client with `if (n == 0) continue;` prints the whole reply and then
spins for ever. The lesson must name that once, hold back every check that would
only time out again, let no check pass on the killed program, and finish well
within 30 seconds (it used to take 182).
"""
import sys
import time

from checker.harness import T, run
from checker.harness.target import ROOT


def test_a_program_that_never_exits_is_one_cause():
    start = time.monotonic()
    result = run([sys.executable, str(ROOT / "checker/run.py"), "mutant", "01", "never-exits"],
                 timeout=T(120), cwd=ROOT)
    elapsed = time.monotonic() - start
    output = result.stdout.decode(errors="replace")
    assert result.returncode == 1, output
    assert output.count("✗") == 1, output
    assert "did not exit" in output and "does your loop stop when recv() returns 0" in output, output
    assert "more checks will run once" in output, output
    for passing_on_a_killed_program in ("strace: socket", "AddressSanitizer finds", "prints a 4 MiB"):
        assert f"✓ {passing_on_a_killed_program}" not in output, output
    assert elapsed < 30 * T(1), f"{elapsed:.0f} s"
