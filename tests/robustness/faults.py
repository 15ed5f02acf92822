"""Fault injectors for the store of a running service, and an analyzer held at a gate."""
from __future__ import annotations

import os
import threading
from pathlib import Path


def db_path(settings) -> Path:
    return Path(settings.db_url.removeprefix("sqlite:///"))


def make_read_only(store, path: Path) -> None:
    """Make the database read-only under a running store: chmod its files (effective for
    non-root users) and reopen the store's connections read-only (``mode=ro``, which binds root
    too), as new connections would find the files after a chmod."""
    import sqlalchemy as sa

    for p in path.parent.glob(path.name + "*"):
        os.chmod(p, 0o444)
    store.engine.dispose()
    store.engine = sa.create_engine(f"sqlite:///file:{path}?mode=ro&uri=true",
                                    connect_args={"check_same_thread": False, "timeout": 1})


def corrupt(path: Path, n: int = 1 << 16) -> None:
    """Overwrite the first ``n`` bytes of the database in place (the header and the schema)."""
    with open(path, "r+b") as handle:
        handle.write(os.urandom(n))


class Blocking:
    """The analyzer, held at a gate until the test opens it."""

    def __init__(self, inner) -> None:
        self.inner, self.gate, self.entered = inner, threading.Event(), threading.Event()

    def __getattr__(self, name):
        return getattr(self.inner, name)

    def analyze_batch(self, images, **kwargs):
        self.entered.set()
        self.gate.wait(30)
        return self.inner.analyze_batch(images, **kwargs)
