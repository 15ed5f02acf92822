"""A database that turns read-only or corrupt under the running service, or before it starts.

Every route that touches the store answers 503 ``storage_unavailable`` (the API's problem shape,
Retry-After, the security headers) with one log line and no traceback; ``/ready`` says the store
is not writable; ``spinexr serve`` on such a database ends with one ``error:`` line and exit 2;
and no fault in the database files can kill the process (no memory-mapped WAL index to SIGBUS).
"""
from __future__ import annotations

import logging
import os
import subprocess
import sys
import textwrap
import threading

import pytest

from faults import Blocking, corrupt, db_path, make_read_only
from service_helpers import add_key, bearer, phantom_dicom, running, upload

ROUTES = [("GET", "/v1/analyses", None), ("GET", "/v1/analyses/{id}", None),
          ("GET", "/v1/analyses/{id}/result.json", None), ("POST", "/v1/analyses", "file"),
          ("POST", "/v1/analyses?async=true", "file"), ("POST", "/upload", "file")]


def _fault(kind: str, client, settings) -> None:
    store = client.app.state.service.store
    if kind == "read_only":
        make_read_only(store, db_path(settings))
    else:
        store.engine.dispose()          # the pool's connections would keep their cached pages
        corrupt(db_path(settings))


def _call(client, method, path, field, key, analysis_id):
    url = path.format(id=analysis_id)
    files = upload("p.dcm", phantom_dicom()) if field else None
    return client.request(method, url, headers=bearer(key), files=files)


@pytest.mark.parametrize("kind", ["read_only", "corrupt"])
def test_storage_faults_are_503_with_the_problem_shape_and_one_log_line(kind, settings,
                                                                        analyzer, caplog):
    key = add_key(settings, "alice", "admin")
    with running(settings, analyzer) as c:
        done = c.post("/v1/analyses", headers=bearer(key), files=upload("a.dcm", phantom_dicom()))
        assert done.status_code == 200
        assert c.get("/ready").json()["store"] is True
        _fault(kind, c, settings)
        for method, path, field in ROUTES:
            if kind == "read_only" and method == "GET":
                continue                   # reads of a read-only database still work
            caplog.clear()
            with caplog.at_level(logging.INFO, logger="spinexr.service"):
                r = _call(c, method, path, field, key, done.json()["id"])
            assert r.status_code == 503, (path, r.status_code, r.text)
            assert r.json()["error"]["code"] == "storage_unavailable", r.text
            assert int(r.headers["retry-after"]) >= 1
            assert r.headers["x-content-type-options"] == "nosniff"
            if path == "/upload":
                assert r.json()["status"] == "error"
            errors = [rec for rec in caplog.records if rec.levelno >= logging.ERROR]
            assert len(errors) == 1 and errors[0].exc_info is None, [
                (e.getMessage(), e.exc_info is not None) for e in errors]
        ready = c.get("/ready")
        assert ready.status_code == 503 and ready.json()["store"] is False


def test_an_analysis_whose_result_cannot_be_stored_is_503_not_500(settings, analyzer):
    key = add_key(settings, "alice", "submit")
    slow = Blocking(analyzer)
    with running(settings, slow) as c:
        answer = {}
        t = threading.Thread(target=lambda: answer.update(r=c.post(
            "/v1/analyses", headers=bearer(key), files=upload("a.dcm", phantom_dicom()))))
        t.start()
        assert slow.entered.wait(30)
        _fault("read_only", c, settings)
        slow.gate.set()
        t.join(60)
        r = answer["r"]
        assert r.status_code == 503 and r.json()["error"]["code"] == "storage_unavailable"
        metrics = c.get("/metrics").text
        assert 'status="500"' not in metrics and 'outcome="failed"' in metrics


@pytest.mark.parametrize("kind", ["read_only", "corrupt", "not_a_database"])
def test_serve_on_a_broken_database_is_one_error_line(kind, settings, tiny_pack, tmp_path,
                                                      monkeypatch, capsys):
    from spinexr.cli import main
    from spinexr.service.store import Store

    path = db_path(settings)
    Store.open(settings.db_url).close()
    data_dir = str(path.parent)
    if kind == "read_only":
        monkeypatch.setenv("SPINEXR_DATABASE_URL", f"sqlite:///file:{path}?mode=ro&uri=true")
        for p in path.parent.glob("spinexr.db*"):
            os.chmod(p, 0o444)
    elif kind == "corrupt":
        corrupt(path)
    else:
        path.write_bytes(b"this is not a database" * 100)
    monkeypatch.setenv("SPINEXR_MODELS", str(tmp_path / "none"))
    code = main(["serve", "--data-dir", data_dir, "--pack", str(tiny_pack), "--port", "1"])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 1 and err[0].startswith("error:"), err
    assert "database" in err[0]


_SHM_SCRIPT = textwrap.dedent("""
    import os, sys, threading, time, uuid
    from spinexr.service.store import Store
    path = sys.argv[1]
    store = Store.open(f"sqlite:///{path}")
    stop = time.monotonic() + 2.0
    def work():
        while time.monotonic() < stop:
            i = uuid.uuid4().hex
            try:
                store.create_analysis(id=i, owner="a", sha256="0" * 64, size=1, pack_name="p",
                                      pack_version="1", data=os.urandom(20000))
                store.finish(i, "done", {"a": 1}, {"r.png": ("image/png", os.urandom(40000))})
                store.history(limit=5)
            except Exception:
                pass
    threads = [threading.Thread(target=work) for _ in range(3)]
    [t.start() for t in threads]
    time.sleep(0.7)
    # what a copy, a restore or a careless tool does to the files beside the database
    for suffix in ("-shm", "-wal", "-journal"):
        if os.path.exists(path + suffix):
            os.truncate(path + suffix, 0)
    [t.join() for t in threads]
    print("alive", os.path.exists(path + "-shm"))
""")


def test_truncating_the_files_beside_the_database_cannot_kill_the_process(tmp_path):
    """The old WAL mode memory-mapped ``spinexr.db-shm``: shortening it killed the server
    with SIGBUS (exit 135, no log line). Without a mapped file the same fault is an error."""
    script = tmp_path / "shm.py"
    script.write_text(_SHM_SCRIPT)
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(p for p in sys.path if p)}
    out = subprocess.run([sys.executable, str(script), str(tmp_path / "spinexr.db")],
                         capture_output=True, text=True, timeout=120, env=env)
    assert out.returncode == 0, (out.returncode, out.stderr[-2000:])
    assert out.stdout.split() == ["alive", "False"]
