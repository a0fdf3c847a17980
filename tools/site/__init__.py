"""The course as a static website: `make site` (build.py) and its browser self-test (test.py)."""
