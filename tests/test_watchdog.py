"""The embedded lab heals itself: `./lab chaos kill` crashes a service, the watchdog brings it back,
gives up on one that crashes on every start, and `./lab up` brings that one back.

These run on the session's shared lab and leave it healthy: each test breaks one thing and waits
until it is mended (the give-up test mends it with `./lab up`, as a learner would).
"""

from __future__ import annotations

import json
import os
import signal
import socket
import time
from datetime import UTC, datetime

import pytest

from tests.conftest import EmbeddedLab

pytestmark = pytest.mark.stack


def services(lab: EmbeddedLab) -> dict[str, dict]:
    return {s["name"]: s for s in json.loads(lab.cli("status", "--json", check=False).stdout)}


def wait_until(lab: EmbeddedLab, what: str, ready, timeout: float) -> dict[str, dict]:
    """Poll `./lab status --json` until `ready(states)`; fail with the last states after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        states = services(lab)
        if ready(states):
            return states
        if time.monotonic() > deadline:
            raise AssertionError(
                f"not {what} after {timeout:.0f}s:\n{json.dumps(states, indent=1)}\n"
                + (lab.home / "logs" / "watchdog.log").read_text()[-3000:]
            )
        time.sleep(0.5)


def back_with_a_new_pid(before: dict[str, dict], names: list[str]):
    return lambda states: all(states[n]["healthy"] and states[n]["pid"] not in (None, before[n]["pid"]) for n in names)


def test_chaos_kill_of_an_unknown_service_names_the_services(tmp_path):
    result = EmbeddedLab(tmp_path / "lab").cli("chaos", "kill", "nosuch", check=False, timeout=60)
    assert result.returncode == 1
    assert result.stderr.count("\n") == 1, result.stderr
    assert "'nosuch'" in result.stderr and "dask-worker-1" in result.stderr and "prefect-worker" in result.stderr, (
        result.stderr
    )


def test_killed_dask_worker_and_upstream_come_back_healthy(embedded_lab):
    before = services(embedded_lab)
    for name in ("dask-worker-1", "upstream"):
        embedded_lab.cli("chaos", "kill", name)
    after = wait_until(
        embedded_lab,
        "dask-worker-1 and upstream healthy again",
        back_with_a_new_pid(before, ["dask-worker-1", "upstream"]),
        60,
    )
    for name in ("dask-worker-1", "upstream"):
        assert after[name]["restarts"] >= before[name]["restarts"] + 1, after[name]
        assert after[name]["last_exit"] == "SIGKILL", after[name]


def test_killed_prefect_worker_comes_back_and_polls_the_pool_again(embedded_lab):
    before = services(embedded_lab)
    killed_at = datetime.now(UTC)
    embedded_lab.cli("chaos", "kill", "prefect-worker")
    after = wait_until(
        embedded_lab, "prefect-worker healthy again", back_with_a_new_pid(before, ["prefect-worker"]), 60
    )
    assert after["prefect-worker"]["last_exit"] == "SIGKILL", after["prefect-worker"]

    # "ONLINE" outlives a killed worker by a few heartbeats: the proof is a heartbeat of the new one.
    def heartbeat() -> datetime:
        workers = embedded_lab.post("/work_pools/workshop/workers/filter", {})
        beat = next(w["last_heartbeat_time"] for w in workers if w["name"] == "lab-worker")
        return datetime.fromisoformat(beat.replace("Z", "+00:00"))

    deadline = time.monotonic() + 60
    while heartbeat() <= killed_at:
        assert time.monotonic() < deadline, "the restarted Prefect worker sent no heartbeat in 60s"
        time.sleep(1)


def test_a_service_that_crashes_on_every_start_is_given_up_until_up(embedded_lab):
    lab, port = embedded_lab, int(embedded_lab.env["UPSTREAM_PORT"])
    squatter = socket.socket()
    try:
        lab.cli("chaos", "kill", "upstream")
        # The watchdog waits at least 1 s before a restart: the port is ours first, every restart fails.
        squatter.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        squatter.bind(("127.0.0.1", port))
        squatter.listen()
        given_up = wait_until(lab, "given up on the upstream", lambda s: s["upstream"]["given_up"], 60)["upstream"]
        assert not given_up["running"] and given_up["crashes"] == 5, given_up
        line = next(row for row in lab.cli("status", check=False).stdout.splitlines() if "upstream" in row)
        assert (
            f"stopped — gave up after 5 crashes (last exit {given_up['last_exit']}): ./lab logs upstream; ./lab up starts it again"
            in line
        ), line
    finally:
        squatter.close()
        lab.cli("up", "--no-first-flow")
    back = services(lab)["upstream"]
    assert back["healthy"] and not back["given_up"] and back["restarts"] == 0, back


def test_a_new_watchdog_adopts_the_services_of_a_killed_one(embedded_lab):
    lab = embedded_lab
    before = services(lab)
    os.kill(before["watchdog"]["pid"], signal.SIGKILL)
    wait_until(lab, "the watchdog reported dead", lambda s: not s["watchdog"]["running"], 10)

    result = lab.cli("up", "--no-first-flow")
    assert "already running" in result.stdout and "adopts" in result.stdout, result.stdout
    adopted = services(lab)
    assert adopted["watchdog"]["healthy"]
    assert {n: s["pid"] for n, s in adopted.items() if n != "watchdog"} == {
        n: s["pid"] for n, s in before.items() if n != "watchdog"
    }

    lab.cli("chaos", "kill", "upstream")
    back = wait_until(lab, "the adopted upstream healthy again", back_with_a_new_pid(adopted, ["upstream"]), 60)[
        "upstream"
    ]
    # Not its parent, the new watchdog cannot know how it ended, and says so.
    assert back["last_exit"] == "unknown" and back["restarts"] >= 1, back
