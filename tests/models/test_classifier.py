"""Classifier factory, preprocessing contract, heads, inference wrapper and pack round trip."""
from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from spinexr.errors import ConfigError
from spinexr.models.classifier import (Classifier, Preprocess, adapt_first_conv,
                                       coral_probabilities, create_classifier,
                                       default_preprocess, expected_grade, normalize, prepare,
                                       probabilities, resize_to_input)


TINY = "test_efficientnet"  # timm's own 99k-parameter test model


def _logit(p: float) -> float:
    return math.log(p / (1 - p))


def test_preprocess_round_trips_through_the_manifest_form():
    pre = Preprocess(48, mean=0.4, std=0.2, interpolation="bilinear", resize="squash",
                     pad_value=0.1)
    d = pre.to_dict()
    assert d["size"] == 48 and d["channels"] == 1 and "input_size" not in d
    assert Preprocess.from_dict(d) == pre


@pytest.mark.parametrize("kwargs, match", [
    ({"input_size": 4}, "input_size"), ({"input_size": 32, "std": 0.0}, "std"),
    ({"input_size": 32, "resize": "crop"}, "resize"),
    ({"input_size": 32, "interpolation": "nearest"}, "interpolation")])
def test_preprocess_refuses_bad_values(kwargs, match):
    with pytest.raises(ConfigError, match=match):
        Preprocess(**kwargs)


def test_letterbox_keeps_the_aspect_and_pads_the_sides():
    img = np.ones((100, 50), np.float32)
    out = resize_to_input(img, Preprocess(32, resize="letterbox", pad_value=0.0))
    assert out.shape == (32, 32) and out.dtype == np.float32
    np.testing.assert_array_equal(out[:, :8], 0.0)     # 50/100*32 = 16 wide, centred
    np.testing.assert_allclose(out[:, 8:24], 1.0, atol=1e-6)
    np.testing.assert_array_equal(out[:, 24:], 0.0)


def test_squash_fills_the_canvas_and_area_resize_averages():
    img = np.zeros((64, 32), np.float32)
    img[:, 16:] = 1.0
    out = resize_to_input(img, Preprocess(16, resize="squash", interpolation="area"))
    np.testing.assert_allclose(out[:, :8], 0.0, atol=1e-6)
    np.testing.assert_allclose(out[:, 8:], 1.0, atol=1e-6)


def test_resize_does_not_touch_a_read_only_input():
    img = np.random.default_rng(0).random((40, 30), dtype=np.float32)
    img.flags.writeable = False
    before = img.copy()
    resize_to_input(img, Preprocess(16, interpolation="bicubic"))
    np.testing.assert_array_equal(img, before)


def test_prepare_is_normalize_of_the_cached_canvas():
    """Training caches resize_to_input and normalises; inference calls prepare: the same."""
    from spinexr.train.images import ArrayData, to_uint16

    rng = np.random.default_rng(1)
    images = [rng.random(shape, dtype=np.float32) for shape in ((50, 40), (37, 61), (32, 32))]
    pre = Preprocess(24, mean=0.45, std=0.22)
    served = prepare(images, pre)
    assert served.shape == (3, 1, 24, 24) and served.dtype == torch.float32
    canvases = np.stack([resize_to_input(im, pre) for im in images])
    torch.testing.assert_close(served, normalize(torch.from_numpy(canvases)[:, None], pre),
                               rtol=0, atol=0)
    cached = ArrayData(np.stack([to_uint16(c) for c in canvases]), np.zeros(3, np.int64),
                       ("a", "b", "c"), ("a", "b", "c"))
    # the uint16 cache costs at most half a step of 1/65535 before normalisation
    torch.testing.assert_close(normalize(cached.batch([0, 1, 2]), pre), served, rtol=0,
                               atol=0.5 / 65535 / pre.std + 1e-6)


@pytest.mark.parametrize("head, classes, width", [("softmax", 3, 3), ("binary", 2, 1),
                                                  ("ordinal", 5, 4)])
def test_timm_heads_have_the_documented_width(head, classes, width):
    torch.manual_seed(0)
    model = create_classifier(TINY, classes, head=head).eval()
    with torch.no_grad():
        out = model(torch.rand(2, 1, 32, 32))
    assert out.shape == (2, width)


def test_binary_head_needs_two_classes():
    with pytest.raises(ConfigError, match="binary head has 2 classes"):
        create_classifier(TINY, 3, head="binary")


def test_unknown_architecture_is_named():
    with pytest.raises(ConfigError, match="unknown architecture 'resnet_nope'"):
        create_classifier("resnet_nope", 2)


@pytest.mark.parametrize("arch", ["alexnet", "googlenet", "tv:resnet18"])
def test_torchvision_models_take_one_channel(arch):
    torch.manual_seed(0)
    model = create_classifier(arch, 3, head="softmax").eval()
    first = next(m for m in model.modules() if isinstance(m, torch.nn.Conv2d))
    assert first.in_channels == 1
    with torch.no_grad():
        assert model(torch.rand(1, 1, 64, 64)).shape == (1, 3)


def test_adapted_first_conv_sees_grey_as_its_rgb_replica():
    from torchvision.models import resnet18

    torch.manual_seed(0)
    rgb = resnet18(weights=None, num_classes=4).eval()
    grey = resnet18(weights=None, num_classes=4).eval()
    grey.load_state_dict(rgb.state_dict())
    adapt_first_conv(grey, 1)
    x = torch.rand(2, 1, 48, 48)
    with torch.no_grad():
        torch.testing.assert_close(grey(x), rgb(x.expand(-1, 3, -1, -1)), rtol=1e-4, atol=1e-5)


def test_coral_decode_by_hand():
    # P(y>0)=0.8, P(y>1)=0.5, P(y>2)=0.2 -> p = [0.2, 0.3, 0.3, 0.2], E[y] = 0.8+0.5+0.2
    logits = np.array([[_logit(0.8), 0.0, _logit(0.2)]])
    probs = coral_probabilities(logits)
    np.testing.assert_allclose(probs, [[0.2, 0.3, 0.3, 0.2]], atol=1e-12)
    np.testing.assert_allclose(expected_grade(probs), [1.5], atol=1e-12)


def test_coral_decode_repairs_crossing_cutpoints():
    # P(y>0)=0.3 < P(y>1)=0.6 is impossible: the running minimum makes it 0.3, 0.3
    probs = coral_probabilities(np.array([[_logit(0.3), _logit(0.6)]]))
    np.testing.assert_allclose(probs, [[0.7, 0.0, 0.3]], atol=1e-12)


def test_binary_and_softmax_probabilities_by_hand():
    np.testing.assert_allclose(probabilities(np.array([[0.0], [math.log(3)]]), "binary"),
                               [[0.5, 0.5], [0.25, 0.75]], atol=1e-12)
    # temperature 2 halves the logit: sigmoid(ln 9 / 2) = sigmoid(ln 3) = 0.75
    np.testing.assert_allclose(probabilities(np.array([[math.log(9)]]), "binary", 2.0)[:, 1],
                               [0.75], atol=1e-12)
    np.testing.assert_allclose(probabilities(np.array([[0.0, math.log(3)]]), "softmax"),
                               [[0.25, 0.75]], atol=1e-12)


def _trained_like(head: str, classes: int):
    """A tiny model with non-trivial BatchNorm statistics (as after training)."""
    torch.manual_seed(0)
    model = create_classifier(TINY, classes, head=head)
    model.train()
    with torch.no_grad():
        for _ in range(3):
            model(torch.rand(8, 1, 32, 32) * 2)
    return model.eval()


def test_classifier_batches_give_the_same_answers():
    model = _trained_like("softmax", 3)
    rng = np.random.default_rng(2)
    images = [rng.random((40 + i, 36), dtype=np.float32) for i in range(5)]
    pre = Preprocess(32)
    one = Classifier(model, ["a", "b", "c"], "softmax", pre, batch_size=1)
    many = Classifier(model, ["a", "b", "c"], "softmax", pre, batch_size=4)
    np.testing.assert_allclose(one.predict_logits(images), many.predict_logits(images),
                               atol=1e-5)
    probs = many.predict_proba(images)
    assert probs.shape == (5, 3)
    np.testing.assert_allclose(probs.sum(axis=1), 1.0, atol=1e-9)
    assert many.predict_proba([]).shape == (0, 3)


class _StandIn:
    """A member without ``pre``: asked through ``predict_logits`` only."""

    def predict_logits(self, images):
        return np.full((len(images), 1), 7.0, np.float32)


def test_shared_logits_prepare_once_per_contract_and_give_each_members_own_logits(
        monkeypatch):
    import spinexr.models.classifier as classifier

    rng = np.random.default_rng(4)
    images = [rng.random((40 + i, 36), dtype=np.float32) for i in range(5)]
    a, b = _trained_like("softmax", 3), _trained_like("binary", 2)
    members = {"a": Classifier(a, ["x", "y", "z"], "softmax", Preprocess(32), batch_size=2),
               "b": Classifier(b, ["n", "p"], "binary", Preprocess(32), batch_size=2),
               "c": Classifier(b, ["n", "p"], "binary", Preprocess(24), batch_size=2),
               "s": _StandIn()}
    own = {k: m.predict_logits(images) for k, m in members.items()}
    calls = []
    real = classifier.prepare
    monkeypatch.setattr(classifier, "prepare",
                        lambda ims, pre: calls.append(pre.input_size) or real(ims, pre))
    shared = classifier.shared_logits(members, images)
    assert list(shared) == ["a", "b", "c", "s"]
    for k in members:
        np.testing.assert_array_equal(shared[k], own[k])
    # chunks of 2 of 5 images: 3 prepares for the 32 px contract of a and b, 3 for c's
    assert sorted(calls) == [24] * 3 + [32] * 3
    assert classifier.shared_logits(members, [])["b"].shape == (0, 1)


@pytest.mark.parametrize("head, labels", [("binary", ["normal", "abnormal"]),
                                          ("ordinal", ["g0", "g1", "g2", "g3", "g4"])])
def test_save_pack_load_gives_the_same_predictions(tmp_path, head, labels):
    from spinexr.models.pack import load_pack, save_pack, save_weights

    model = _trained_like(head, len(labels))
    pre = Preprocess(32, mean=0.45, std=0.2)
    clf = Classifier(model, labels, head, pre, temperature=1.5)
    sha = save_weights(model.state_dict(), tmp_path / "m.safetensors", fp16=True)
    spec = {**clf.spec(), "arch": TINY, "weights": "m.safetensors", "dtype": "float16",
            "sha256": sha, "temperature": 1.5}
    save_pack(tmp_path, {"name": "t", "version": "0", "models": {"m": spec}})
    loaded = load_pack(tmp_path).classifier("m")
    assert (loaded.labels, loaded.head, loaded.pre, loaded.temperature) == (
        tuple(labels), head, pre, 1.5)
    images = [np.random.default_rng(i).random((48, 40), dtype=np.float32) for i in range(4)]
    np.testing.assert_allclose(loaded.predict_proba(images), clf.predict_proba(images),
                               atol=2e-3)  # fp16 weights


def test_initial_weights_come_from_a_local_file_adapted_to_one_channel(tmp_path):
    import timm
    from safetensors.torch import save_file

    torch.manual_seed(0)
    rgb = timm.create_model(TINY, pretrained=False)            # 3 channels, 1000 classes
    state = {k: v.contiguous() for k, v in rgb.state_dict().items()}
    save_file(state, str(tmp_path / "imagenet.safetensors"))
    model = create_classifier(TINY, 2, head="binary",
                              init_file=tmp_path / "imagenet.safetensors")
    conv = rgb.pretrained_cfg["first_conv"] + ".weight"
    torch.testing.assert_close(model.state_dict()[conv], state[conv].sum(dim=1, keepdim=True))
    with pytest.raises(ConfigError, match="not found"):
        create_classifier(TINY, 2, head="binary", init_file=tmp_path / "nope.pth")


def test_default_preprocess_follows_timms_pretrained_cfg():
    pre = default_preprocess("resnet10t")
    assert pre.input_size == 176 and pre.interpolation == "bicubic"
    assert pre.mean == pytest.approx(np.mean([0.485, 0.456, 0.406]))
    assert default_preprocess("alexnet", 128).input_size == 128
