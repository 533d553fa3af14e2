"""Which database, and migrations: against a real PostgreSQL."""

from __future__ import annotations

import threading

import psycopg
import pytest

from musingly_pipeline.storage import database, migrations


def test_environment_url_wins_over_embedded():
    target = database.database_target({"MUSINGLY_DATABASE_URL": "postgresql://u:pw@db.example:5432/x"})
    assert not target.embedded and target.display == "postgresql://u:***@db.example:5432/x"


def test_embedded_server_answers(tmp_path):
    url = database.embedded_url()
    with database.connect(url) as conn:
        assert conn.execute("SELECT 1").fetchone() == (1,)


def test_unreachable_database_message_names_url_without_password():
    with pytest.raises(database.DatabaseUnavailable) as info:
        database.connect("postgresql://someone:s3cret@127.0.0.1:1/nope")
    message = str(info.value)
    assert "127.0.0.1:1" in message and "s3cret" not in message and "***" in message


def test_sqlalchemy_url_names_the_psycopg2_driver():
    assert database.sqlalchemy_url("postgresql://a@h/db") == "postgresql+psycopg2://a@h/db"
    assert database.sqlalchemy_url("postgres://a@h/db") == "postgresql+psycopg2://a@h/db"


def _write_migrations(directory, *texts):
    directory.mkdir(exist_ok=True)
    for i, text in enumerate(texts, 1):
        (directory / f"{i:04d}_m{i}.sql").write_text(text)


def test_migrations_apply_once_in_order(make_database, tmp_path):
    url = make_database()
    folder = tmp_path / "m"
    _write_migrations(folder, "CREATE TABLE a (id int);", "ALTER TABLE a ADD COLUMN b text;")
    assert migrations.migrate(url, folder) == ["0001_m1.sql", "0002_m2.sql"]
    assert migrations.migrate(url, folder) == []
    assert all(s.applied_at is not None for s in migrations.status(url, folder))


def test_edited_migration_is_refused(make_database, tmp_path):
    url = make_database()
    folder = tmp_path / "m"
    _write_migrations(folder, "CREATE TABLE a (id int);")
    migrations.migrate(url, folder)
    (folder / "0001_m1.sql").write_text("CREATE TABLE a (id bigint);")
    with pytest.raises(migrations.MigrationError, match="0001_m1.sql was edited"):
        migrations.migrate(url, folder)


def test_failed_migration_leaves_nothing_half_applied(make_database, tmp_path):
    url = make_database()
    folder = tmp_path / "m"
    _write_migrations(folder, "CREATE TABLE a (id int);", "CREATE TABLE b (id int); SELECT no_such_fn();")
    with pytest.raises(migrations.MigrationError, match="0002_m2.sql failed"):
        migrations.migrate(url, folder)
    with psycopg.connect(url) as conn:
        assert conn.execute("SELECT to_regclass('a') IS NOT NULL, to_regclass('b') IS NULL").fetchone() == (True, True)
    assert [s.applied_at is not None for s in migrations.status(url, folder)] == [True, False]


def test_concurrent_migrations_do_not_race(make_database, tmp_path):
    url = make_database()
    folder = tmp_path / "m"
    _write_migrations(folder, "SELECT pg_sleep(0.3); CREATE TABLE a (id int);", "CREATE TABLE b (id int);")
    results, errors = [], []

    def run():
        try:
            results.append(migrations.migrate(url, folder))
        except Exception as exc:  # collected and asserted below
            errors.append(exc)

    threads = [threading.Thread(target=run) for _ in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    assert sorted(map(len, results)) == [0, 0, 2]


def test_project_migrations_apply_to_a_fresh_database(make_database):
    url = make_database()
    migrations.migrate(url)
    assert all(s.applied_at is not None for s in migrations.status(url))


def test_the_embedded_server_stops_only_when_nothing_else_uses_it(tmp_path):
    pgdata = tmp_path / "pg"
    assert not database.embedded_server(pgdata).running
    url = database.embedded_url(pgdata)  # starts a server of its own in tmp_path
    try:
        with psycopg.connect(url) as other:  # another client: it must not be cut off
            other.execute("SELECT 1")
            state = database.stop_embedded_server(pgdata)
            assert state.running and state.in_use and state.other_connections == 1
            assert database.embedded_server(pgdata).running
        state = database.stop_embedded_server(pgdata)
        assert state.running and not state.in_use
        assert not database.embedded_server(pgdata).running
        assert database.stop_embedded_server(pgdata).running is False  # stopping twice is fine
    finally:
        database.stop_embedded_server(pgdata, force=True)
