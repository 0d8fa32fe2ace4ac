"""Run a `prefect` CLI command the way the embedded lab needs it.

    python -m workshop_lab.stack.launch --after-prefect-server -- worker start --pool workshop ...

is `prefect worker start --pool workshop ...`, except that the seconds Python spends importing
Prefect pass while the server is still starting. The embedded lab starts the worker this way;
in Docker Compose, `depends_on` does the waiting and the plain `prefect` command runs.

    python -m workshop_lab.stack.launch --seed-database -- server start --host ... --port ...

is `prefect server start ...` on a fresh state folder's database started from the migrated
template (workshop_lab/stack/prefect_database.py), then `exec`: the server keeps this process.
"""

from __future__ import annotations

import os
import sys

from workshop_lab.stack.health import wait_until_healthy


def main(argv: list[str]) -> None:
    if "--" not in argv:
        raise SystemExit(__doc__)
    options, prefect_args = argv[: argv.index("--")], argv[argv.index("--") + 1 :]

    if "--seed-database" in options:
        from pathlib import Path

        from workshop_lab.stack.prefect_database import BIN, seed

        seed(Path(os.environ["PREFECT_HOME"]), log=lambda line: print(f"[lab] {line}", flush=True))
        os.execv(BIN / "prefect", ["prefect", *prefect_args])

    # The slow part, done first: the CLI, the worker and the flow-run machinery.
    import prefect.workers.process  # noqa: F401
    from prefect.cli import app

    if "--after-prefect-server" in options:
        wait_until_healthy(os.environ["PREFECT_API_URL"])

    sys.argv = ["prefect", *prefect_args]
    app()


if __name__ == "__main__":
    main(sys.argv[1:])
