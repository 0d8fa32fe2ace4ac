"""What the benchmarks share (they run as scripts: `python bench/NAME.py` puts this folder on sys.path)."""

from __future__ import annotations

import os
import socket

# A benchmark brings up labs and bare servers of its own: what the lab's venv fills in for a
# learner's shell (workshop_lab/stack/shell.py: the running lab's addresses) must not leak into them.
_added = set(filter(None, os.environ.pop("LAB_SHELL_SET", "").split(",")))
for _name in _added:
    os.environ.pop(_name, None)
os.environ["LAB_SHELL"] = "0"


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]
