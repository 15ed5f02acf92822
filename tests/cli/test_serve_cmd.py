"""``spinexr keys`` and ``spinexr serve``: keys printed once, one-line errors, exit code 2."""
from __future__ import annotations

import pytest

pytest.importorskip("fastapi")

from spinexr.cli import main  # noqa: E402


def test_keys_create_list_revoke(tmp_path, capsys):
    data = ["--data-dir", str(tmp_path)]
    assert main(["keys", *data, "create", "alice", "--role", "submit"]) == 0
    key = capsys.readouterr().out.strip()
    assert key.startswith("sxr_") and len(key) > 40
    assert main(["keys", *data, "list"]) == 0
    listing = capsys.readouterr().out
    assert "alice" in listing and "submit" in listing and key not in listing
    assert main(["keys", *data, "create", "alice", "--role", "read"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "exists already" in err[0]
    assert main(["keys", *data, "revoke", "alice"]) == 0
    assert main(["keys", *data, "revoke", "alice"]) == 2
    assert "no active key" in capsys.readouterr().err
    from spinexr.service.auth import KeyVerifier
    from spinexr.service.store import Store

    store = Store.open(f"sqlite:///{tmp_path / 'spinexr.db'}")
    assert KeyVerifier(store).principal(key) is None          # revoked
    store.close()


def test_keys_bad_role_is_a_usage_error(tmp_path, capsys):
    assert main(["keys", "--data-dir", str(tmp_path), "create", "x", "--role", "root"]) == 2
    assert "invalid choice" in capsys.readouterr().err


def test_serve_without_a_pack_is_one_error_line(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("SPINEXR_MODELS", str(tmp_path / "none"))
    assert main(["serve", "--data-dir", str(tmp_path)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error:") and "--pack" in err[0]




def test_dev_mode_refuses_public_interfaces(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("SPINEXR_AUTH", "off")
    assert main(["serve", "--host", "0.0.0.0", "--data-dir", str(tmp_path)]) == 2
    assert "loopback only" in capsys.readouterr().err


def test_keys_options_are_accepted_after_the_action_too(tmp_path, capsys):
    """``keys create NAME --data-dir DIR`` used to fail: the option was only accepted before
    the action. Either place works now, and the audit rows name the key (never the secret)."""
    assert main(["keys", "create", "bob", "--role", "read", "--data-dir", str(tmp_path)]) == 0
    key = capsys.readouterr().out.strip()
    assert main(["keys", "list", "--data-dir", str(tmp_path)]) == 0
    assert "bob" in capsys.readouterr().out
    assert main(["keys", "--data-dir", str(tmp_path), "revoke", "bob"]) == 0
    from spinexr.service.store import Store

    store = Store.open(f"sqlite:///{tmp_path / 'spinexr.db'}")
    rows = [(r["action"], r["subject"]) for r in store.audit_rows()]
    store.close()
    assert ("key_create", "bob") in rows and ("key_revoke", "bob") in rows
    assert all(key not in str(r) for r in rows)
