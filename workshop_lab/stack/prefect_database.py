"""The embedded lab's Prefect database starts from a migrated copy, not from nothing.

A Prefect 3.9 server on an empty SQLite file spends most of its start-up applying its schema
migrations one by one: on the lab's 2-core reference machine about 15 of a bare server's 25 s
(bench/startup.py). Those migrations give the same empty schema every time, for a given Prefect
version. So the first embedded `up` migrates an empty database once, into a template kept in the
venv (`<venv>/share/workflow-orchestration-lab/`, keyed by the Prefect and SQLite versions), and
every fresh start after it (a new LAB_HOME, `./lab reset`) copies that template into the state
folder. The server still runs its migrations on start: on the copy they find nothing to do.

Only the embedded lab's default SQLite database is seeded: with LAB_DATABASE_URL (Postgres) the
server migrates its own database. (Docker Compose's Postgres starts from a schema dump instead:
images/postgres/initdb/, scripts/postgres-template.sh.)

    python -m workshop_lab.stack.prefect_database            # build the template now (./lab does it on demand)
"""

from __future__ import annotations

import contextlib
import importlib.metadata
import os
import shutil
import sqlite3
import subprocess
import sys
import tempfile
from pathlib import Path

BIN = Path(sys.executable).parent
TEMPLATE_DIR = Path(sys.prefix) / "share" / "workflow-orchestration-lab"
# Set by the lab for a server on another database (LAB_DATABASE_URL): nothing to seed then.
DATABASE_URL_VARIABLES = ("PREFECT_SERVER_DATABASE_CONNECTION_URL", "PREFECT_API_DATABASE_CONNECTION_URL")


def template_path() -> Path:
    version = importlib.metadata.version("prefect")
    return TEMPLATE_DIR / f"prefect-{version}-sqlite-{sqlite3.sqlite_version}.db"


def database_path(prefect_home: Path) -> Path:
    """Where Prefect keeps its SQLite database when no connection URL is set."""
    return prefect_home / "prefect.db"


def build_template(log=print) -> Path:
    """Migrate an empty database into the template (atomically: concurrent builds are harmless)."""
    template = template_path()
    template.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=template.parent, prefix=".build-") as build:
        database = Path(build) / "prefect.db"
        env = {key: value for key, value in os.environ.items() if key not in DATABASE_URL_VARIABLES}
        env.update(PREFECT_HOME=build, PREFECT_SERVER_DATABASE_CONNECTION_URL=f"sqlite+aiosqlite:///{database}")
        log(f"migrating an empty Prefect database once, for every later fresh start: {template}")
        result = subprocess.run(
            [str(BIN / "prefect"), "server", "database", "upgrade", "--yes"], env=env, capture_output=True, text=True
        )
        if result.returncode != 0:
            raise RuntimeError(
                f"`prefect server database upgrade` failed (exit {result.returncode}):\n{result.stdout}{result.stderr}"
            )
        # One self-contained file: fold the write-ahead log in, and leave WAL mode for a plain copy.
        with contextlib.closing(sqlite3.connect(database)) as connection:
            connection.execute("PRAGMA wal_checkpoint(TRUNCATE)")
            connection.execute("PRAGMA journal_mode=DELETE")
        os.replace(database, template)
    return template


def seed(prefect_home: Path, log=print) -> bool:
    """Give a fresh embedded server a migrated database. True when it copied one."""
    if any(os.environ.get(name) for name in DATABASE_URL_VARIABLES):
        return False
    target = database_path(prefect_home)
    if target.exists():
        return False
    template = template_path()
    if not template.exists():
        try:
            build_template(log)
        except (OSError, RuntimeError) as error:
            # Never a reason not to start: the server migrates its own database, only slower.
            log(f"no template database ({error}); the server migrates its own")
            return False
    prefect_home.mkdir(parents=True, exist_ok=True)
    partial = target.with_name(target.name + ".seeding")
    shutil.copyfile(template, partial)
    os.replace(partial, target)
    log(f"started Prefect's database from {template}")
    return True


if __name__ == "__main__":
    print(build_template())
