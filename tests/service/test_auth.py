"""Keys, roles and the per-key token bucket, through the API and directly."""
from __future__ import annotations

import pytest

from service_helpers import add_key, bearer, running

from spinexr.service.auth import Principal, RateLimiter, retry_after, split_key


def test_token_bucket_allows_bursts_then_says_when():
    now = [0.0]
    limiter = RateLimiter(60, clock=lambda: now[0])       # one a second, bursts of 60
    assert all(limiter.take("k") == 0 for _ in range(60))
    wait = limiter.take("k")
    assert wait == pytest.approx(1.0) and retry_after(wait) == "1"
    assert limiter.take("other") == 0                     # buckets are per caller
    now[0] += 2.5
    assert limiter.take("k") == 0 and limiter.take("k") == 0 and limiter.take("k") > 0
    assert RateLimiter(0).take("k") == 0                  # 0 disables the limit


def test_roles_grant_what_the_docs_say():
    assert Principal("a", "submit").can("submit") and not Principal("a", "submit").can("read_all")
    assert Principal("a", "read").can("read_all") and not Principal("a", "read").can("submit")
    assert all(Principal("a", "admin").can(p) for p in ("submit", "read_all", "admin"))
    assert split_key("sxr_abc_def_ghi") == ("abc", "def_ghi") and split_key("Bearer x") is None


def test_no_key_bad_key_wrong_role_and_revoked_key(settings, analyzer):
    submit = add_key(settings, "alice", "submit")
    read = add_key(settings, "carol", "read")
    with running(settings, analyzer) as c:
        r = c.get("/v1/analyses")
        assert r.status_code == 401 and r.json()["error"]["code"] == "unauthorized"
        assert r.headers["www-authenticate"] == "Bearer"
        assert c.get("/v1/analyses", headers=bearer(submit + "x")).status_code == 401
        assert c.get("/v1/analyses", headers=bearer("sxr_nope_nope")).status_code == 401
        r = c.post("/v1/analyses", headers=bearer(read), files={"file": ("a", b"x")})
        assert r.status_code == 403 and r.json()["error"]["code"] == "forbidden"
        assert "'read'" in r.json()["error"]["message"]
        r = c.post("/v1/keys", headers=bearer(submit), json={"name": "x", "role": "admin"})
        assert r.status_code == 403
        assert c.get("/v1/analyses", headers=bearer(submit)).status_code == 200
        from spinexr.service.store import Store

        store = Store.open(settings.db_url)
        store.revoke_key("alice")
        store.close()
        r = c.get("/v1/analyses", headers=bearer(submit))   # revocation applies at once
        assert r.status_code == 401 and r.json()["error"]["code"] == "invalid_key"


def test_admin_manages_keys_over_the_api(settings, analyzer):
    admin = add_key(settings, "root", "admin")
    with running(settings, analyzer) as c:
        r = c.post("/v1/keys", headers=bearer(admin), json={"name": "bob", "role": "read"})
        assert r.status_code == 201 and r.json()["key"].startswith("sxr_")
        new = r.json()["key"]
        assert c.get("/v1/analyses", headers=bearer(new)).status_code == 200
        names = [k["name"] for k in c.get("/v1/keys", headers=bearer(admin)).json()["items"]]
        assert names == ["root", "bob"]
        r = c.post("/v1/keys", headers=bearer(admin), json={"name": "eve", "role": "god"})
        assert r.status_code == 422 and "role" in r.json()["error"]["message"]
        assert c.delete("/v1/keys/bob", headers=bearer(admin)).status_code == 200
        assert c.get("/v1/analyses", headers=bearer(new)).status_code == 401
        assert c.delete("/v1/keys/bob", headers=bearer(admin)).status_code == 404


def test_rate_limit_answers_429_with_retry_after(settings, analyzer):
    s = settings.with_(rate_limit_per_minute=3)
    key = add_key(s, "alice", "read")
    with running(s, analyzer) as c:
        codes = [c.get("/v1/analyses", headers=bearer(key)).status_code for _ in range(4)]
        assert codes == [200, 200, 200, 429]
        r = c.get("/v1/analyses", headers=bearer(key))
        assert r.json()["error"]["code"] == "rate_limited"
        assert int(r.headers["retry-after"]) >= 1
        assert "spinexr_rejected_total{reason=\"rate_limited\"} 2.0" in c.get("/metrics").text


def test_dev_mode_needs_no_key(settings, analyzer):
    with running(settings.with_(auth_required=False), analyzer) as c:
        assert c.get("/v1/analyses").status_code == 200
        assert c.get("/v1/keys").status_code == 200       # the dev caller is an admin
