"""The audit log names what each action was about: the key created or revoked (its id, never
its secret) and reads of the analysis list (analyses a crash interrupted: test_app's crash
recovery test)."""
from __future__ import annotations

from service_helpers import add_key, bearer, running


def _rows(settings) -> list[dict]:
    from spinexr.service.store import Store

    store = Store.open(settings.db_url)
    try:
        return list(reversed(store.audit_rows(1000)))
    finally:
        store.close()


def test_key_rows_name_the_key_id_and_never_the_secret(settings, analyzer):
    admin = add_key(settings, "root", "admin")
    with running(settings, analyzer) as c:
        key = c.post("/v1/keys", json={"name": "bob", "role": "submit"},
                     headers=bearer(admin)).json()["key"]
        assert c.delete("/v1/keys/bob", headers=bearer(admin)).status_code == 200
    _, key_id, secret = key.split("_", 2)
    rows = {r["action"]: r for r in _rows(settings) if r["action"].startswith("key_")}
    assert rows["key_create"]["subject"] == key_id and rows["key_create"]["key_name"] == "root"
    assert rows["key_revoke"]["subject"] == key_id
    assert not any(secret in str(v) for r in _rows(settings) for v in r.values())


def test_reading_the_analysis_list_is_audited(settings, analyzer):
    key = add_key(settings, "alice", "submit")
    with running(settings, analyzer) as c:
        assert c.get("/v1/analyses", headers=bearer(key)).status_code == 200
    assert [(r["key_name"], r["action"], r["outcome"]) for r in _rows(settings)] == [
        ("alice", "list", "ok")]
