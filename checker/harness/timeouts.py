"""Every timeout the checker uses goes through T(), so one environment
variable makes them all longer on a slow or busy machine:

    NETCOURSE_TIMEOUT_SCALE=3 make lesson-02
"""
import os


def _scale() -> float:
    try:
        value = float(os.environ.get("NETCOURSE_TIMEOUT_SCALE", "1"))
    except ValueError:
        return 1.0
    return value if value > 0 else 1.0


SCALE = _scale()


def T(seconds: float) -> float:
    """A timeout of `seconds` on a typical laptop, scaled for this machine."""
    return seconds * SCALE
