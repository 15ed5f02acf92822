"""The node's settings and its incoming filter, parsed once at the edge."""
from __future__ import annotations

import pytest

from spinexr.errors import ConfigError
from spinexr.pacs import Destination, FilterConfig, RetryPolicy, decide
from spinexr.pacs.config import ip_allowed, parse_networks


def test_destination_parses_aet_host_port_and_ipv6():
    assert Destination.parse("ORTHANC@10.0.0.2:4242") == Destination("ORTHANC", "10.0.0.2", 4242)
    assert Destination.parse("PACS@[::1]:104").host == "::1"
    for bad in ("PACS:104", "PACS@host", "PACS@host:0", "AN_AE_TITLE_TOO_LONG@h:1"):
        with pytest.raises(ConfigError):
            Destination.parse(bad)


def test_backoff_doubles_up_to_the_maximum():
    policy = RetryPolicy(base_s=2, max_s=10, dead_after_s=60)
    assert [policy.delay(n) for n in (1, 2, 3, 4, 5)] == [2, 4, 8, 10, 10]
    with pytest.raises(ConfigError, match="retry"):
        RetryPolicy(base_s=5, max_s=1)


def test_ip_allow_list_matches_networks_and_ipv4_mapped_addresses():
    nets = parse_networks(["10.0.0.0/8", "::1"])
    assert ip_allowed("10.2.3.4", nets) and ip_allowed("::ffff:10.2.3.4", nets)
    assert ip_allowed("::1", nets) and not ip_allowed("192.168.1.1", nets)
    assert ip_allowed("192.168.1.1", ())
    with pytest.raises(ConfigError, match="--allow-ip"):
        parse_networks(["10.0.0.300/8"])


def test_filter_rules_and_reasons_name_no_free_text():
    f = FilterConfig(body_parts=("LSPINE", "CSPINE"), skip_words=("myelo",))
    assert decide({"modality": "DX", "body_part_examined": "LSPINE"}, f).analyse
    assert decide({"modality": "CT"}, f).rule == "modality"
    assert decide({"modality": "DX", "body_part_examined": "KNEE"}, f).rule == "body_part"
    d = decide({"modality": "CR", "study_description": "Myélo lombaire Mr Dupont"}, f)
    assert (d.analyse, d.rule) == (False, "description") and "Dupont" not in d.reason
    chest = decide({"modality": "CR", "body_part_examined": "CHEST"}, FilterConfig())
    assert (chest.analyse, chest.rule) == (False, "header")
    assert decide({"modality": "CR", "body_part_examined": "CHEST"},
                  FilterConfig(header_check=False)).analyse


def test_filter_file_is_checked(tmp_path):
    good = tmp_path / "f.yaml"
    good.write_text("modalities: [DX]\nskip_words: [trauma]\nheader_check: false\n")
    assert FilterConfig.load(good) == FilterConfig(modalities=("DX",), skip_words=("TRAUMA",),
                                                   header_check=False)
    bad = tmp_path / "bad.json"
    bad.write_text('{"modality": ["DX"]}')
    with pytest.raises(ConfigError, match="unknown filter key"):
        FilterConfig.load(bad)
