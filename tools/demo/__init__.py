"""make demo-NN: the instructor's live demonstrations, one tmux layout per lesson.

    python3 -m tools.demo NN [--port 6000] [--step N] [--detach]
    python3 -m tools.demo end [--port 6000]

lessons.py says what each demo shows, session.py runs its tmux server in namespaces of its
own, packets.py draws the capture pane, __main__.py is the command, test_demos.py the
headless self-test (make test-demos). docs/instructor-guide.md explains how to use them.
"""
