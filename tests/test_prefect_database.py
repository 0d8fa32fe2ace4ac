"""The migrated databases a fresh Prefect server starts from, so that it has no migrations to apply.
Embedded: a SQLite template (workshop_lab/stack/prefect_database.py), built with Prefect's own migrations,
copied only into a state folder that has no database. Docker Compose: Postgres runs
images/postgres/initdb/prefect-schema.sql (scripts/postgres-template.sh) when it creates its volume;
tests/test_compose_stack.py checks that the real stack started from it."""

from __future__ import annotations

import re
import sqlite3
from pathlib import Path

import pytest
import yaml

from workshop_lab.stack import prefect_database


@pytest.fixture(scope="module")
def template(tmp_path_factory) -> Path:
    """A template built here from scratch (not the venv's, which an earlier `up` may have made)."""
    folder = tmp_path_factory.mktemp("template")
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(prefect_database, "TEMPLATE_DIR", folder)
        built = prefect_database.build_template(log=lambda _: None)
    assert built.parent == folder
    return built


@pytest.fixture
def uses(template, monkeypatch) -> Path:
    monkeypatch.setattr(prefect_database, "TEMPLATE_DIR", template.parent)
    for name in prefect_database.DATABASE_URL_VARIABLES:
        monkeypatch.delenv(name, raising=False)
    return template


REPO_ROOT = Path(__file__).resolve().parent.parent
POSTGRES_SCHEMA = REPO_ROOT / "images" / "postgres" / "initdb" / "prefect-schema.sql"


def prefect_migration_head(dialect: str) -> str:
    """The newest of the installed Prefect's migrations for `dialect` (sqlite, postgresql)."""
    import prefect.server.database as database
    from alembic.script import ScriptDirectory

    migrations = Path(database.__file__).parent / "_migrations"
    heads = ScriptDirectory(str(migrations), version_locations=[str(migrations / "versions" / dialect)]).get_heads()
    assert len(heads) == 1, heads
    return heads[0]


def test_template_is_one_file_at_prefects_newest_migration(template):
    assert (
        template.name
        == f"prefect-{prefect_database.importlib.metadata.version('prefect')}-sqlite-{sqlite3.sqlite_version}.db"
    )
    assert sorted(p.name for p in template.parent.iterdir()) == [template.name], (
        "no -wal/-shm file or build folder left"
    )
    with sqlite3.connect(template) as db:
        assert db.execute("SELECT version_num FROM alembic_version").fetchall() == [(prefect_migration_head("sqlite"),)]
        assert db.execute("PRAGMA journal_mode").fetchone() == ("delete",)
        assert db.execute("SELECT count(*) FROM flow_run").fetchone() == (0,)
    db.close()


def test_seed_copies_the_template_into_a_fresh_state_folder(uses, tmp_path):
    home = tmp_path / "prefect"
    assert prefect_database.seed(home, log=lambda _: None) is True
    assert (home / "prefect.db").read_bytes() == uses.read_bytes()
    assert sorted(p.name for p in home.iterdir()) == ["prefect.db"], "no partial copy left behind"


def test_seed_never_replaces_an_existing_database(uses, tmp_path):
    home = tmp_path / "prefect"
    home.mkdir()
    (home / "prefect.db").write_bytes(b"a learner's run history")
    assert prefect_database.seed(home, log=lambda _: None) is False
    assert (home / "prefect.db").read_bytes() == b"a learner's run history"


def test_seed_leaves_another_database_to_the_server(uses, tmp_path, monkeypatch):
    monkeypatch.setenv(
        "PREFECT_SERVER_DATABASE_CONNECTION_URL", "postgresql+asyncpg://prefect:prefect@127.0.0.1/prefect"
    )
    assert prefect_database.seed(tmp_path / "prefect", log=lambda _: None) is False
    assert not (tmp_path / "prefect").exists()


def test_a_failed_build_says_so_and_lets_the_server_migrate(tmp_path, monkeypatch):
    broken_bin = tmp_path / "bin"
    broken_bin.mkdir()
    (broken_bin / "prefect").write_text("#!/bin/sh\necho 'database is locked' >&2\nexit 3\n")
    (broken_bin / "prefect").chmod(0o755)
    monkeypatch.setattr(prefect_database, "BIN", broken_bin)
    monkeypatch.setattr(prefect_database, "TEMPLATE_DIR", tmp_path / "templates")
    for name in prefect_database.DATABASE_URL_VARIABLES:
        monkeypatch.delenv(name, raising=False)
    said: list[str] = []
    assert prefect_database.seed(tmp_path / "prefect", log=said.append) is False
    assert not (tmp_path / "prefect" / "prefect.db").exists()
    assert "exit 3" in said[-1] and "database is locked" in said[-1] and "the server migrates its own" in said[-1], said
    assert not list((tmp_path / "templates").iterdir()), "a failed build leaves no template behind"


def test_compose_postgres_schema_is_this_prefects_newest_migration():
    text = POSTGRES_SCHEMA.read_text()
    regenerate = "regenerate it after a Prefect upgrade: scripts/postgres-template.sh"
    made_by = re.match(r"-- Prefect (\S+)'s database schema", text)
    assert made_by and made_by[1] == prefect_database.importlib.metadata.version("prefect"), (
        made_by and made_by[1],
        regenerate,
    )
    revision = re.search(r"^COPY public\.alembic_version \(version_num\) FROM stdin;\n(\w+)\n\\\.$", text, re.MULTILINE)
    assert revision and revision[1] == prefect_migration_head("postgresql"), (revision and revision[1], regenerate)
    # Only the schema: no rows but the migration mark, and no psql command older Postgres images lack.
    with_rows = re.findall(r"^COPY (\S+) .*FROM stdin;\n(?!\\\.$)", text, re.MULTILINE)
    assert with_rows == ["public.alembic_version"], with_rows
    assert not re.search(r"^\\(?!\.$)", text, re.MULTILINE), "a psql meta-command in the dump"


def test_compose_postgres_runs_the_schema_when_it_creates_its_volume():
    compose = yaml.safe_load((REPO_ROOT / "docker-compose.yml").read_text())
    mounts = compose["services"]["postgres"]["volumes"]
    assert "./images/postgres/initdb:/docker-entrypoint-initdb.d:ro" in mounts, mounts
    assert sorted(p.name for p in POSTGRES_SCHEMA.parent.iterdir()) == [POSTGRES_SCHEMA.name]
