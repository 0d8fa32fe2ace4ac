"""Your shell reaches the lab: every Python process of the lab's venv talks to the running lab.

A learner's `.venv/bin/python flows/00_hello_lab.py`, `.venv/bin/prefect deployment ls` or
`.venv/bin/python -c "from prefect.blocks.system import Secret; ..."` has none of the lab's
environment: Prefect would start a throwaway server of its own for each run (or use
`~/.prefect`), flows would start a local Dask cluster, and nothing would show in the lab's UI.

The lab's venv already runs one line of the lab's at every interpreter start (the `.pth` file
that `./lab` writes), so `install()` runs there too and fills in, for any variable the
environment does not already set, the addresses the lab's own processes get: Prefect's API,
the Dask scheduler, the upstream and inbox, result storage and the warehouse. They come from the
lab's settings (environment, `.env`, defaults), the same ones `./lab up` used, so they hold from
any folder and for both labs (embedded and Docker publish the same ports).

Why not Prefect's own `prefect.toml` or a profile: `prefect.toml` is read only from the current
folder (a learner in `flows/` would miss it), a profile lives in `~/.prefect` and outlives the lab,
and neither carries the Dask scheduler's or the upstream's address, which flows read from plain
environment variables. Environment variables are Prefect's first settings source, so this is
Prefect's own mechanism, set early.

When no lab answers, the script does not silently start a throwaway server: Prefect fails to
reach the lab's API and `install()`'s exception hook says so in one line. Explicit settings win:
a variable already in the environment is never changed, and `LAB_SHELL=0` turns all of this off
(the test suite and the benchmarks run with it). Other shells, other Pythons: `./lab env` prints
the same variables as `export` lines.
"""

from __future__ import annotations

import os
import sys

# Set by install() in the processes it filled in: the names it set, so they can be taken back out.
MARKER = "LAB_SHELL_SET"
# Variables of the lab's own processes that a learner's shell must not get.
NOT_FOR_SHELLS = ("LAB_INSTANCE", "PREFECT_HOME", "PREFECT_UI_API_URL", "LAB_WORKER_NAME")


def shell_environment(config) -> dict[str, str]:
    """The variables that make a process on this machine use the running lab (either lab)."""
    from workshop_lab.stack.services import lab_environment

    env = {name: value for name, value in lab_environment(config).items() if name not in NOT_FOR_SHELLS}
    env["LAB_HOME"] = str(config.home)
    if config.docker_lab_is_up:
        # Tasks a shell's flow sends to the Docker lab's Dask workers get the flow's result storage
        # path with them, and no host folder exists in a container: keep Prefect's default
        # (~/.prefect/storage, on each side). Deployment runs use the lab's results volume.
        env.pop("PREFECT_LOCAL_STORAGE_PATH")
    return env


def applies(environ=os.environ) -> bool:
    """Not in the lab's own processes (they carry LAB_INSTANCE), not when switched off or set by hand."""
    return environ.get("LAB_SHELL", "1") != "0" and "LAB_INSTANCE" not in environ and "PREFECT_API_URL" not in environ


def install() -> None:
    """Fill in the lab's addresses for this process (called at interpreter start, from the .pth)."""
    if not applies():
        return
    try:
        from workshop_lab.stack.settings import LabConfig

        config = LabConfig.load()
        # Empty values (an unset SLACK_WEBHOOK_URL, no Snowflake account) mean the same as none.
        wanted = {name: value for name, value in shell_environment(config).items() if value and name not in os.environ}
        os.environ.update(wanted)
        added = list(wanted)
    except Exception as error:  # a broken .env must not break every Python process of the venv
        print(f"lab: your shell does not reach the lab ({error}); fix the setting, or set LAB_SHELL=0", file=sys.stderr)
        return
    os.environ[MARKER] = ",".join(added)
    _explain_when_the_lab_is_down(
        [os.environ[name] for name in ("PREFECT_API_URL", "LAB_UPSTREAM_URL", "LAB_INBOX_URL") if name in os.environ]
    )


def without_shell(environ: dict[str, str]) -> dict[str, str]:
    """`environ` without what install() added, and with install() off (for the test suite)."""
    added = set(filter(None, environ.get(MARKER, "").split(",")))
    return {**{k: v for k, v in environ.items() if k not in added and k != MARKER}, "LAB_SHELL": "0"}


def _explain_when_the_lab_is_down(addresses: list[str]) -> None:
    """An uncaught failure to reach one of the lab's addresses becomes one line saying what to do:
    Prefect's "Failed to reach API at <the lab>", or httpx's ConnectError to the upstream or inbox."""
    previous = sys.excepthook

    def unreachable(error) -> str | None:
        seen = 0
        while error is not None and seen < 10:
            for address in addresses:
                if f"Failed to reach API at {address}" in str(error):
                    return address
            if type(error).__name__ == "ConnectError":
                try:
                    url = str(error.request.url)
                except Exception:  # httpx raises RuntimeError when the error carries no request
                    url = ""
                for address in addresses:
                    if url.startswith(address.removesuffix("/api")):
                        return address
            error, seen = error.__cause__ or error.__context__, seen + 1
        return None

    def hook(kind, error, tb):
        address = unreachable(error)
        if address is None:
            return previous(kind, error, tb)
        print(
            f"lab: nothing answers at {address}: the lab is not running (./lab status shows what is up). "
            "Start it with ./lab up, then run this again.",
            file=sys.stderr,
        )

    sys.excepthook = hook
