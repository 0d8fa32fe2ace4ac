"""The migrated template the embedded server's database starts from (workshop_lab/prefect_database.py):
built with Prefect's own migrations, copied only into a state folder that has no database."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from workshop_lab import prefect_database


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


def prefect_sqlite_head() -> str:
    from alembic.script import ScriptDirectory

    import prefect.server.database as database

    migrations = Path(database.__file__).parent / "_migrations"
    heads = ScriptDirectory(str(migrations), version_locations=[str(migrations / "versions" / "sqlite")]).get_heads()
    assert len(heads) == 1, heads
    return heads[0]


def test_template_is_one_file_at_prefects_newest_migration(template):
    assert template.name == f"prefect-{prefect_database.importlib.metadata.version('prefect')}-sqlite-{sqlite3.sqlite_version}.db"
    assert sorted(p.name for p in template.parent.iterdir()) == [template.name], "no -wal/-shm file or build folder left"
    with sqlite3.connect(template) as db:
        assert db.execute("SELECT version_num FROM alembic_version").fetchall() == [(prefect_sqlite_head(),)]
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
    monkeypatch.setenv("PREFECT_SERVER_DATABASE_CONNECTION_URL", "postgresql+asyncpg://prefect:prefect@127.0.0.1/prefect")
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
