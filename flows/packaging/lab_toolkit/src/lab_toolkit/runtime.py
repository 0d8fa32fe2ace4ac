"""Where is this code running? The facts a flow run reports to prove which image ran it."""

from __future__ import annotations

import os
import socket
import sys
from importlib.metadata import distribution
from pathlib import Path


def in_container() -> bool:
    """True inside a Docker container (Docker creates /.dockerenv in every container)."""
    return Path("/.dockerenv").exists()


def describe_runtime() -> dict[str, str | bool]:
    """The installed lab_toolkit (version, where pip put it) and the host, Python and user running it."""
    dist = distribution("lab-toolkit")
    return {
        "lab_toolkit_version": dist.version,
        "lab_toolkit_location": str(Path(__file__).resolve().parent),
        "installed_by_pip": (dist.read_text("INSTALLER") or "").strip() == "pip",
        "hostname": socket.gethostname(),
        "in_container": in_container(),
        "python": sys.version.split()[0],
        "python_prefix": sys.prefix,
        "uid": str(os.getuid()),
    }
