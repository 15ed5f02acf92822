"""The service plans its threads once, before its models are built (issue 14)."""
from __future__ import annotations

import pytest

from spinexr.models import threads
from spinexr.service import core
from spinexr.service.settings import Settings


@pytest.mark.parametrize("workers, free, intra", [(1, 4.0, 4), (2, 4.0, 2), (3, 2.0, 1)])
def test_load_analyzer_splits_the_free_cpus_among_the_analysis_threads(
        monkeypatch, tmp_path, workers, free, intra):
    torch = pytest.importorskip("torch")
    before = torch.get_num_threads()
    seen = {}

    def fake_analyzer(pack, vertebrae_pack=None):
        # sessions made now read the plan: the plan must already be in force
        seen.update(intra=threads.planned_intra_op(), torch=torch.get_num_threads(),
                    pack=pack)
        return "analyzer"

    monkeypatch.setattr(threads, "_CURRENT", [])
    monkeypatch.setattr(core, "plan_threads", lambda processes, decode_workers: threads.
                        plan_threads(processes, decode_workers=decode_workers, cpus=4,
                                     load=4.0 - free))
    monkeypatch.setattr(core, "resolve_packs", lambda pack, vert: ("pack", None))
    monkeypatch.setattr(core, "Analyzer", fake_analyzer)
    try:
        settings = Settings.from_env({"SPINEXR_DATA_DIR": str(tmp_path)}, workers=workers)
        assert core.load_analyzer(settings) == "analyzer"
        assert seen == {"intra": intra, "torch": intra, "pack": "pack"}
        assert threads._CURRENT[0].decode_workers == 0
    finally:
        torch.set_num_threads(before)
