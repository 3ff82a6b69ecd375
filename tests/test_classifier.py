"""The attribute classifier: shipped weights, API shapes, saving/loading, training, CLI errors."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from ganinterface import bundled
from ganinterface.cli import main
from ganinterface.demo import classifier, portraits
from ganinterface.demo.classifier import ATTRIBUTES, AttributeClassifier, label_indices

FRESH_SEEDS = range(7_000_000_000, 7_000_000_200)  # neither training nor the report's held-out set


@pytest.fixture(scope="module")
def shipped() -> AttributeClassifier:
    if not bundled.classifier_checkpoint().exists():
        pytest.fail(f"shipped weights missing: {bundled.classifier_checkpoint()}")
    return classifier.load_classifier()


@pytest.fixture(scope="module")
def fresh_renders() -> tuple[np.ndarray, list[dict]]:
    return portraits.render_batch(FRESH_SEEDS)


def _truth(labels: list[dict], name: str) -> np.ndarray:
    """Class indices computed directly from the labels, independently of label_indices."""
    if name == "mouth_open":
        return np.array([1 if l["mouth_open"] else 0 for l in labels])
    if name == "hair_band":
        return np.array([0 if l["hair_band_colour"] is None else 1 for l in labels])
    return np.array([list(ATTRIBUTES[name]).index(l[name]) for l in labels])


def test_shipped_classifier_reads_mouth_and_band(shipped, fresh_renders):
    images, labels = fresh_renders
    probabilities = shipped.classify(images)
    for name in ("mouth_open", "hair_band"):
        accuracy = np.mean(probabilities[name].argmax(1) == _truth(labels, name))
        assert accuracy >= 0.95, (name, accuracy)


def test_shipped_classifier_reads_other_attributes(shipped, fresh_renders):
    images, labels = fresh_renders
    probabilities = shipped.classify(images)
    for name in ATTRIBUTES:
        accuracy = np.mean(probabilities[name].argmax(1) == _truth(labels, name))
        assert accuracy >= 0.9, (name, accuracy)


def test_shipped_classifier_tolerates_blur(shipped, fresh_renders):
    images, labels = fresh_renders
    blurred = classifier.blur_for_evaluation(images, 1.0)
    probabilities = shipped.classify(blurred)
    for name in ("mouth_open", "hair_band"):
        assert np.mean(probabilities[name].argmax(1) == _truth(labels, name)) >= 0.9, name


def test_shipped_report_is_consistent(shipped):
    report = json.loads(bundled.classifier_checkpoint().with_suffix(".json").read_text())
    assert report["format"] == classifier.FORMAT
    assert set(report["accuracy"]) == set(ATTRIBUTES)
    assert report["images_seen"] == report["settings"]["steps"] * report["settings"]["batch"]
    assert report["config"] == shipped.config()


def test_classify_and_features_shapes():
    model = AttributeClassifier()
    images, _ = portraits.render_batch(range(5))
    probabilities = model.classify(images)
    assert set(probabilities) == set(ATTRIBUTES)
    for name, classes in ATTRIBUTES.items():
        assert probabilities[name].shape == (5, len(classes))
        assert probabilities[name].dtype == np.float32
        np.testing.assert_allclose(probabilities[name].sum(1), 1.0, rtol=1e-5)
    assert model.features(images).shape == (5, 128)


def test_larger_portraits_are_shrunk_and_other_shapes_refused():
    model = AttributeClassifier()
    small, _ = portraits.render_batch([3], 128, 64)
    large, _ = portraits.render_batch([3], 256, 128)
    assert model.classify(large)["mouth_open"].shape == (1, 2)
    with pytest.raises(ValueError, match="2:1"):
        model.classify(np.zeros((1, 64, 64, 3), np.uint8))
    with pytest.raises(ValueError, match="uint8"):
        model.classify(small.astype(np.float32))


def test_classification_does_not_depend_on_batching():
    model = AttributeClassifier()
    images, _ = portraits.render_batch(range(6))
    together = model.classify(images)["hair_colour"]
    one_by_one = np.concatenate([model.classify(images[i:i + 1])["hair_colour"] for i in range(6)])
    np.testing.assert_allclose(together, one_by_one, atol=1e-5)


def test_to_tensor_matches_the_generator_range():
    images = np.array([[[[0, 255, 127]]]], np.uint8)
    tensor = classifier.to_tensor(images)
    assert tensor.shape == (1, 3, 1, 1)
    np.testing.assert_allclose(tensor.flatten().numpy(), [-1.0, 1.0, 127 / 127.5 - 1], atol=1e-6)


def test_label_indices_match_the_labels():
    _, labels = portraits.render_batch(range(30))
    indices = label_indices(labels)
    for name in ATTRIBUTES:
        assert np.array_equal(indices[name], _truth(labels, name)), name


def test_save_and_load_round_trip(tmp_path):
    torch.manual_seed(1)
    model = AttributeClassifier(channels=(8, 8, 8, 8, 8, 16), feature_dim=16)
    with torch.no_grad():  # make batch-norm statistics non-trivial so they must be saved too
        for module in model.modules():
            if isinstance(module, torch.nn.BatchNorm2d):
                module.running_mean.uniform_(-0.5, 0.5)
                module.running_var.uniform_(0.5, 2.0)
    path = tmp_path / "c.safetensors"
    classifier.save_classifier(model, path, {"accuracy": {}})
    loaded = classifier.load_classifier(path)
    images, _ = portraits.render_batch(range(4))
    np.testing.assert_array_equal(model.features(images), loaded.features(images))
    assert json.loads(path.with_suffix(".json").read_text())["config"]["feature_dim"] == 16


def test_loading_something_else_names_the_file(tmp_path):
    path = tmp_path / "other.safetensors"
    path.write_bytes(b"not a safetensors file")
    with pytest.raises(ValueError, match="other.safetensors"):
        classifier.load_classifier(path)


def test_degrade_keeps_shape_and_is_deterministic():
    image, _ = portraits.render_portrait(2)
    first = [classifier.degrade(image, np.random.default_rng(s)) for s in range(8)]
    second = [classifier.degrade(image, np.random.default_rng(s)) for s in range(8)]
    for a, b in zip(first, second):
        assert a.shape == image.shape and a.dtype == np.uint8
        assert np.array_equal(a, b)
    assert any(not np.array_equal(a, image) for a in first)


@pytest.mark.slow
def test_tiny_training_run_writes_weights_and_report(tmp_path):
    out = tmp_path / "tiny.safetensors"
    settings = classifier.TrainSettings(steps=2, batch=4, held_out=6)
    report = classifier.train(settings, out)
    assert report["images_seen"] == 8
    assert set(report["accuracy"]) == set(ATTRIBUTES) == set(report["accuracy_blurred"])
    assert classifier.load_classifier(out).classify(portraits.render_batch([1])[0])


@pytest.mark.parametrize("arguments, message", [
    (["--steps", "0"], "--steps must be at least 1"),
    (["--batch", "1"], "--batch must be at least 2"),
    (["--out", "weights.pt"], ".safetensors"),
    (["--threads", "0"], "--threads"),
])
def test_train_classifier_bad_arguments_give_one_line(capsys, arguments, message):
    assert main(["train-classifier", *arguments]) == 1
    error = capsys.readouterr().err
    assert error.count("\n") == 1 and message in error
