"""``spinexr pacs listen`` as users run it: arguments, and a node killed with SIGKILL
mid-queue that delivers everything, once, after a restart."""
from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys

import pytest
from pacs_helpers import free_port, pacs_running, phantom, send, wait_for

from spinexr.cli import main


def test_bad_forward_is_one_error_line(capsys, tiny_pack):
    code = main(["pacs", "listen", "--forward", "PACS:104", "--pack", str(tiny_pack)])
    assert code == 2
    assert "is not AET@HOST:PORT" in capsys.readouterr().err


def test_bad_allow_ip_is_one_error_line(capsys, tiny_pack):
    code = main(["pacs", "listen", "--allow-ip", "10.0.0.300/8", "--pack", str(tiny_pack)])
    assert code == 2
    assert "--allow-ip" in capsys.readouterr().err


def _start(tmp_path, tiny_pack, node_port, pacs_port):
    env = {**os.environ, "SPINEXR_CACHE": str(tmp_path / "cache"), "HF_HUB_OFFLINE": "1",
           "YOLO_OFFLINE": "1"}
    return subprocess.Popen(
        [sys.executable, "-m", "spinexr", "pacs", "listen", "--host", "127.0.0.1",
         "--port", str(node_port), "--forward", f"PACS@127.0.0.1:{pacs_port}",
         "--pack", str(tiny_pack), "--data-dir", str(tmp_path / "data"),
         "--study-window", "0", "--retry-base", "0.2", "--retry-max", "0.5"],
        env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)


def _listening(proc) -> None:
    line = proc.stdout.readline()
    while line and "listening on" not in line:
        line = proc.stdout.readline()
    assert "listening on" in line, "the node did not start"


def _pending(db) -> int:
    if not db.exists():
        return 0
    with sqlite3.connect(db) as conn:
        return conn.execute("SELECT COUNT(*) FROM deliveries WHERE state = 'pending'"
                            ).fetchone()[0]


@pytest.mark.slow
def test_sigkill_mid_queue_then_restart_delivers_everything_once(tmp_path, tiny_pack):
    node_port, pacs_port = free_port(), free_port()
    images = [phantom(400 + i) for i in range(3)]
    proc = _start(tmp_path, tiny_pack, node_port, pacs_port)
    try:
        _listening(proc)
        assert send(node_port, images)[1] == [0, 0, 0]
        queue_db = tmp_path / "data" / "pacs" / "queue.db"
        assert wait_for(lambda: _pending(queue_db) == 9, timeout=90)
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait(10)
    with pacs_running(pacs_port) as pacs:
        proc = _start(tmp_path, tiny_pack, node_port, pacs_port)
        try:
            _listening(proc)
            assert send(node_port, images)[1] == [0, 0, 0]        # the modality resends all
            assert wait_for(lambda: len(pacs.received) >= 9, timeout=90)
            assert not wait_for(lambda: len(pacs.received) > 9, timeout=2)
        finally:
            proc.send_signal(signal.SIGTERM)
            assert proc.wait(30) == 0
    assert len(set(pacs.uids())) == 9
    with sqlite3.connect(tmp_path / "data" / "spinexr.db") as conn:
        rows = conn.execute("SELECT owner, status FROM analyses").fetchall()
        actions = [r[0] for r in conn.execute("SELECT action FROM audit")]
    assert len(rows) == 3 and {r[0] for r in rows} == {"pacs:MODALITY"}
    assert actions.count("analyze") == 3 and actions.count("pacs_send") == 9
