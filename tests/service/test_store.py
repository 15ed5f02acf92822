"""The store: migrations create the schema, recovery after a crash, retention, keys, audit."""
from __future__ import annotations

from datetime import timedelta

import pytest

pytest.importorskip("alembic")

from spinexr.service.store import Store, create_engine, migrate, table_names, utcnow  # noqa: E402
from spinexr.service.tables import metadata  # noqa: E402


@pytest.fixture
def store(tmp_path):
    s = Store.open(f"sqlite:///{tmp_path / 'db' / 'spinexr.db'}")
    yield s
    s.close()


def _add(store, id, *, data=None, owner="k"):
    store.create_analysis(id=id, owner=owner, sha256="ab" * 32, size=3, pack_name="p",
                          pack_version="1", data=data)


def test_upgrade_on_empty_sqlite_creates_the_tables_as_declared(tmp_path):
    engine = create_engine(f"sqlite:///{tmp_path / 'new.db'}")
    assert table_names(engine) == []
    migrate(engine)
    assert table_names(engine) == ["alembic_version", "analyses", "api_keys", "audit",
                                   "heartbeat", "inputs", "renditions"]
    from alembic.autogenerate import compare_metadata
    from alembic.migration import MigrationContext

    with engine.connect() as conn:
        assert compare_metadata(MigrationContext.configure(conn), metadata) == []
        # no WAL: its index is a memory-mapped file that SIGBUSes the process when shortened
        assert conn.exec_driver_sql("PRAGMA journal_mode").scalar() == "delete"
        assert conn.exec_driver_sql("PRAGMA mmap_size").scalar() == 0
        assert conn.exec_driver_sql("PRAGMA foreign_keys").scalar() == 1
    migrate(engine)                                     # a second upgrade is a no-op
    engine.dispose()


def test_recover_requeues_stored_inputs_and_fails_the_rest(store):
    _add(store, "kept", data=b"bytes")
    _add(store, "lost")
    store.set_status("lost", "running")
    _add(store, "over")
    store.finish("over", "done", {"x": 1}, {})
    rec = store.recover()
    assert rec.requeued == ("kept",) and rec.failed == ("lost",)
    assert store.get("kept")["status"] == "queued"
    lost = store.get("lost")
    assert lost["status"] == "failed" and lost["error_code"] == "interrupted"
    assert "submit the file again" in lost["error_message"]
    assert store.get("over")["status"] == "done"


def test_finish_stores_renditions_and_drops_the_input(store):
    _add(store, "a", data=b"in")
    store.finish("a", "done", {"gate": {}}, {"overlay.png": ("image/png", b"PNG")})
    assert store.rendition("a", "overlay.png") == ("image/png", b"PNG")
    assert store.input_of("a") is None
    _add(store, "b", data=b"in")
    store.finish("b", "done", {}, {}, keep_input=True)
    assert store.input_of("b") == (b"in", "")


def test_purge_removes_old_finished_analyses_but_keeps_audit(store):
    _add(store, "old")
    store.finish("old", "done", {}, {"overlay.png": ("image/png", b"x")})
    _add(store, "pending", data=b"x")
    store.audit("k", "analyze", "done", analysis_id="old")
    later = utcnow() + timedelta(days=31)
    assert store.purge(0, now=later) == 0
    assert store.purge(30, now=later) == 1
    assert store.get("old") is None and store.rendition("old", "overlay.png") is None
    assert store.get("pending") is not None              # never purge unfinished work
    assert [r["analysis_id"] for r in store.audit_rows()] == ["old"]


def test_history_pages_newest_first_and_filters_by_owner(store):
    for i in range(5):
        _add(store, f"a{i}", owner="alice" if i % 2 else "bob")
    rows, cursor = store.history(limit=2)
    assert [r["id"] for r in rows] == ["a4", "a3"] and cursor is not None
    rows, cursor = store.history(limit=2, cursor=cursor)
    assert [r["id"] for r in rows] == ["a2", "a1"]
    rows, cursor = store.history(limit=2, cursor=cursor)
    assert [r["id"] for r in rows] == ["a0"] and cursor is None
    assert [r["id"] for r in store.history(limit=10, owner="alice")[0]] == ["a3", "a1"]


def test_keys_store_no_secret_and_revoke_once(store):
    from spinexr.errors import ConfigError
    from spinexr.service.auth import create_key

    key = create_key(store, "alice", "submit")
    row = store.keys()[0]
    assert row.name == "alice" and key.split("_")[2].encode() not in row.hash + row.salt
    with pytest.raises(ConfigError, match="exists already"):
        create_key(store, "alice", "read")
    assert store.revoke_key("alice") == key.split("_")[1] and store.revoke_key("alice") is None


def test_an_analysis_keeps_the_region_it_was_asked_for(store):
    """A requeued analysis (after a crash) is run with the region its submitter named."""
    store.create_analysis(id="r1", owner="k", sha256="ab" * 32, size=3, pack_name="p",
                          pack_version="1", region="cervical")
    _add(store, "r2")
    assert store.get("r1")["region"] == "cervical" and store.get("r2")["region"] == ""
