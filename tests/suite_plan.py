"""The order the suite runs in, so that one lab at a time uses the machine's two cores.

Both session labs (tests/conftest.py: `embedded_lab`, `compose_lab`) would otherwise live from the
first test that needs them to the end of the session, each an idle Prefect server, a worker
polling and a Dask cluster ticking (about a third of a core each), while the other lab's tests
run. So the tests run in three blocks, each block in the order pytest collected it:
1. tests that start no session lab (parsers, settings, files, short-lived processes);
2. the embedded lab's tests; the lab is stopped as soon as the last of them is done;
3. the Docker lab's tests (fixture `compose_lab`, or a test parametrized with "compose").
While blocks 1 and 2 run, the lab image is built in the background (`docker compose build`), so
that block 3's `docker compose up --build` finds it in Docker's cache.
"""

from __future__ import annotations

import subprocess
import threading
from collections import Counter
from collections.abc import Callable
from pathlib import Path

import pytest

UNIT, EMBEDDED, COMPOSE = 0, 1, 2

_remaining: Counter[int] = Counter()
_stoppers: dict[int, Callable[[], None]] = {}
_build: dict[str, object] = {}


def block_of(item: pytest.Item) -> int:
    params = getattr(getattr(item, "callspec", None), "params", {})
    if "compose_lab" in item.fixturenames or "compose" in params.values():
        return COMPOSE
    if "embedded_lab" in item.fixturenames or "embedded" in params.values():
        return EMBEDDED
    return UNIT


@pytest.hookimpl(trylast=True)  # after -k / -m have deselected what this run leaves out
def pytest_collection_modifyitems(session, config, items):
    items.sort(key=block_of)  # stable: each block keeps pytest's order
    _remaining.clear()
    _remaining.update(block_of(item) for item in items)


def stop_when_done(block: int, stop: Callable[[], None]) -> None:
    """Call `stop` once the block's last test is torn down (the fixture's own teardown still
    runs at the session's end: `stop` must be safe to call twice)."""
    _stoppers[block] = stop


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_teardown(item, nextitem):
    yield
    block = block_of(item)
    _remaining[block] -= 1
    if _remaining[block] <= 0 and block in _stoppers:
        _stoppers.pop(block)()


def start_image_build(repo_root: Path, log_path: Path) -> None:
    """`docker compose build` of the lab image and module 09's flows image, in the background (once)."""
    if "thread" in _build:
        return

    def build() -> None:
        with log_path.open("w") as log:
            for service in ("prefect-server", "packaged-worker"):  # the lab image, then module 09's FROM it
                _build["returncode"] = subprocess.run(
                    ["docker", "compose", "--profile", "packaging", "build", service],
                    cwd=repo_root,
                    stdout=log,
                    stderr=subprocess.STDOUT,
                    timeout=1800,
                ).returncode
                if _build["returncode"]:
                    return

    _build["log"] = log_path
    _build["thread"] = threading.Thread(target=build, name="lab-image-build", daemon=True)
    _build["thread"].start()


def compose_tests_selected() -> bool:
    return _remaining[COMPOSE] > 0


def wait_for_image_build() -> None:
    """Wait for the background build, if one was started. A failed build is not an error here:
    `docker compose up --build` builds again and reports it in the test that needed it."""
    thread = _build.get("thread")
    if thread is not None:
        thread.join()
        if _build.get("returncode"):
            print(f"background image build exited {_build['returncode']} (log: {_build['log']}); building again")
