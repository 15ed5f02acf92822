"""Settings from SPINEXR_* variables: defaults, parsing, refusals that name the variable."""
from __future__ import annotations

from pathlib import Path

import pytest

from spinexr.errors import ConfigError
from spinexr.service.settings import MIB, Settings


def test_defaults_are_safe():
    s = Settings.from_env({})
    assert s.auth_required is True and s.cors_origins == () and s.store_inputs is False
    assert s.max_upload_bytes == 64 * MIB
    assert s.db_url == f"sqlite:///{Path('spinexr-data').resolve() / 'spinexr.db'}"


def test_environment_is_parsed_and_overrides_win(tmp_path):
    env = {"SPINEXR_DATA_DIR": str(tmp_path), "SPINEXR_AUTH": "off", "SPINEXR_WORKERS": "3",
           "SPINEXR_CORS_ORIGINS": "https://a.example, https://b.example",
           "SPINEXR_STORE_INPUTS": "yes", "SPINEXR_DATABASE_URL": "postgresql+psycopg://u@h/db"}
    s = Settings.from_env(env, workers=5, pack_dir=None)
    assert (s.auth_required, s.workers, s.store_inputs) == (False, 5, True)
    assert s.cors_origins == ("https://a.example", "https://b.example")
    assert s.db_url == "postgresql+psycopg://u@h/db" and s.data_dir == tmp_path


@pytest.mark.parametrize("env, var", [({"SPINEXR_WORKERS": "two"}, "SPINEXR_WORKERS"),
                                      ({"SPINEXR_AUTH": "maybe"}, "SPINEXR_AUTH"),
                                      ({"SPINEXR_CORS_ORIGINS": "*"}, "SPINEXR_CORS_ORIGINS")])
def test_bad_values_name_the_variable(env, var):
    with pytest.raises(ConfigError, match=var):
        Settings.from_env(env)


def test_limits_must_be_positive():
    with pytest.raises(ConfigError, match="queue_size"):
        Settings(queue_size=0)
