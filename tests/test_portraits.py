"""The procedural portrait renderer: determinism, stated distributions, visible attributes, jitter."""

from __future__ import annotations

import dataclasses
import json
from dataclasses import replace

import numpy as np
import pytest
from PIL import Image

from ganinterface.cli import main
from ganinterface.demo import portraits
from ganinterface.demo.portraits import render_attributes, render_batch, render_portrait

SAMPLE_SIZE = 400
LABEL_KEYS = {"mouth_open", "mouth_openness", "hair_band", "hair_band_colour", "hair_colour", "fringe",
              "eye_colour", "skin_tone", "clothing_colour", "background", "x", "y", "scale", "tilt",
              "mouth_box", "band_box", "seed"}


@pytest.fixture(scope="module")
def sample() -> tuple[np.ndarray, list[dict]]:
    return render_batch(range(1000, 1000 + SAMPLE_SIZE))


def _luminance(pixels: np.ndarray) -> np.ndarray:
    return pixels.astype(np.float64) @ np.array([0.299, 0.587, 0.114])


def _box_pixels(image: np.ndarray, box: list[float]) -> np.ndarray:
    height, width = image.shape[:2]
    x0, y0, x1, y1 = box
    rows = slice(int(np.floor(y0 * height)), int(np.ceil(y1 * height)))
    cols = slice(int(np.floor(x0 * width)), int(np.ceil(x1 * width)))
    return image[rows, cols].reshape(-1, 3)


def _colour_mask(image: np.ndarray, colour: tuple[int, int, int], tolerance: float = 40.0) -> np.ndarray:
    distance = np.linalg.norm(image.astype(np.float64) - np.asarray(colour, np.float64), axis=-1)
    return distance < tolerance


def _inside(point: tuple[float, float], box: list[float]) -> bool:
    x, y = point
    return box[0] <= x <= box[2] and box[1] <= y <= box[3]


def test_same_seed_gives_identical_pixels_and_labels():
    first_image, first_labels = render_portrait(7)
    second_image, second_labels = render_portrait(7)
    assert np.array_equal(first_image, second_image)
    assert first_labels == second_labels


def test_different_seeds_give_different_portraits():
    images, _ = render_batch([7, 8, 9])
    assert not np.array_equal(images[0], images[1])
    assert not np.array_equal(images[1], images[2])


def test_batch_matches_single_renders():
    images, labels = render_batch([3, 11])
    for index, seed in enumerate([3, 11]):
        image, image_labels = render_portrait(seed)
        assert np.array_equal(images[index], image)
        assert labels[index] == image_labels


@pytest.mark.parametrize("height, width", [(128, 64), (64, 32), (256, 128)])
def test_sizes(height, width):
    image, _ = render_portrait(5, height, width)
    assert image.shape == (height, width, 3) and image.dtype == np.uint8
    images, labels = render_batch([1, 2], height, width)
    assert images.shape == (2, height, width, 3) and len(labels) == 2


@pytest.mark.parametrize("height, width", [(64, 64), (128, 63), (8, 4)])
def test_other_aspects_are_refused(height, width):
    with pytest.raises(ValueError, match="2:1"):
        render_portrait(0, height, width)


def test_sizes_draw_the_same_picture():
    small, _ = render_portrait(21, 64, 32)
    large, _ = render_portrait(21, 256, 128)
    shrunk = large.reshape(64, 4, 32, 4, 3).mean(axis=(1, 3))
    assert np.abs(shrunk - small.astype(np.float64)).mean() < 6.0


def test_labels_are_plain_json_with_the_agreed_keys(sample):
    _, labels = sample
    for image_labels in labels[:20]:
        assert set(image_labels) == LABEL_KEYS
        assert json.loads(json.dumps(image_labels)) == image_labels
        for key in ("mouth_box", "band_box"):
            x0, y0, x1, y1 = image_labels[key]
            assert 0.0 <= x0 < x1 <= 1.0 and 0.0 <= y0 < y1 <= 1.0


def test_binary_attributes_follow_stated_probabilities(sample):
    _, labels = sample
    # binomial standard deviation at n=400, p=0.5 is 0.025; allow four of them
    assert abs(np.mean([l["mouth_open"] for l in labels]) - portraits.P_MOUTH_OPEN) < 0.1
    assert abs(np.mean([l["hair_band"] for l in labels]) - portraits.P_HAIR_BAND) < 0.1


@pytest.mark.parametrize("key, palette", [
    ("hair_colour", portraits.HAIR_COLOURS), ("fringe", portraits.FRINGES),
    ("eye_colour", portraits.EYE_COLOURS), ("skin_tone", portraits.SKIN_TONES),
    ("clothing_colour", portraits.CLOTHING_COLOURS), ("background", portraits.BACKGROUNDS),
])
def test_categories_are_uniform(sample, key, palette):
    _, labels = sample
    values = [l[key] for l in labels]
    assert set(values) == set(palette)
    expected = 1.0 / len(palette)
    tolerance = 4 * np.sqrt(expected * (1 - expected) / len(values))
    for name in palette:
        assert abs(values.count(name) / len(values) - expected) < tolerance, name


def test_openness_and_band_colour_are_consistent(sample):
    _, labels = sample
    low, high = portraits.MOUTH_OPENNESS_RANGE
    for l in labels:
        if l["mouth_open"]:
            assert low <= l["mouth_openness"] <= high
        else:
            assert l["mouth_openness"] == 0.0
        if l["hair_band"]:
            band = portraits.BAND_COLOURS[l["hair_band_colour"]]
            hair = portraits.HAIR_COLOURS[l["hair_colour"]]
            assert np.linalg.norm(np.subtract(band, hair)) > portraits.MIN_BAND_HAIR_CONTRAST
        else:
            assert l["hair_band_colour"] is None


def test_open_mouths_are_darker_inside_the_mouth_box(sample):
    images, labels = sample
    open_means, closed_means = [], []
    for image, l in zip(images, labels):
        mean = _luminance(_box_pixels(image, l["mouth_box"])).mean()
        (open_means if l["mouth_open"] else closed_means).append(mean)
    assert np.mean(closed_means) - np.mean(open_means) > 25.0
    # and per image, not just on average: nearly every open mouth is darker than the closed median
    assert np.mean(np.array(open_means) < np.median(closed_means)) > 0.95


def test_band_pixels_match_the_band_colour_inside_the_band_box(sample):
    images, labels = sample
    height, width = images.shape[1:3]
    for image, l in zip(images, labels):
        if not l["hair_band"]:
            continue
        mask = _colour_mask(image, portraits.BAND_COLOURS[l["hair_band_colour"]])
        in_box = np.zeros_like(mask)
        x0, y0, x1, y1 = l["band_box"]
        in_box[int(y0 * height):int(np.ceil(y1 * height)), int(x0 * width):int(np.ceil(x1 * width))] = True
        assert (mask & in_box).sum() >= 60, l["seed"]  # a band a few pixels thick across the hair


def test_heads_move_scale_and_tilt(sample):
    _, labels = sample
    width, height = 64, 128
    centres_x = [(l["mouth_box"][0] + l["mouth_box"][2]) / 2 * width for l in labels]
    centres_y = [(l["mouth_box"][1] + l["mouth_box"][3]) / 2 * height for l in labels]
    assert np.ptp(centres_x) > 8 and np.std(centres_x) > 2.5  # pixels
    assert np.ptp(centres_y) > 8 and np.std(centres_y) > 2.5
    scales = [l["scale"] for l in labels]
    assert min(scales) < 0.92 and max(scales) > 1.08
    tilts = [l["tilt"] for l in labels]
    assert min(tilts) < -6 and max(tilts) > 6


@pytest.mark.parametrize("seed", range(40))
def test_mouth_and_band_change_only_pixels_inside_their_boxes(seed):
    attributes = portraits.sample_attributes(np.random.default_rng(seed))
    labels = portraits.labels_of(attributes)
    pairs = {
        "mouth_box": (replace(attributes, mouth_openness=0.0), replace(attributes, mouth_openness=0.9)),
        "band_box": (replace(attributes, hair_band_colour=None),
                     replace(attributes, hair_band_colour=_contrasting_band(attributes.hair_colour))),
    }
    for key, (without, with_) in pairs.items():
        difference = np.abs(render_attributes(with_).astype(int) - render_attributes(without).astype(int))
        changed = difference.max(axis=-1) > 8
        assert changed.sum() >= 12, key  # the feature is several pixels, not a faint trace
        ys, xs = np.nonzero(changed)
        x0, y0, x1, y1 = labels[key]
        # pixel centres of every clearly changed pixel lie in the box (half a pixel of slack)
        assert ((xs + 0.5) / 64 >= x0 - 0.5 / 64).all() and ((xs + 0.5) / 64 <= x1 + 0.5 / 64).all(), key
        assert ((ys + 0.5) / 128 >= y0 - 0.5 / 128).all() and ((ys + 0.5) / 128 <= y1 + 0.5 / 128).all(), key


def _contrasting_band(hair_colour: str) -> str:
    hair = portraits.HAIR_COLOURS[hair_colour]
    return next(name for name, colour in portraits.BAND_COLOURS.items()
                if np.linalg.norm(np.subtract(colour, hair)) > portraits.MIN_BAND_HAIR_CONTRAST)


# -- ganinterface demo-dataset --------------------------------------------------------------------
def test_demo_dataset_writes_pngs_and_labels(tmp_path):
    out_dir = tmp_path / "data"
    assert main(["demo-dataset", str(out_dir), "--count", "3", "--seed", "40", "--size", "64x32"]) == 0
    lines = (out_dir / "labels.jsonl").read_text().splitlines()
    assert len(lines) == 3
    for seed, line in zip(range(40, 43), lines):
        record = json.loads(line)
        image = np.asarray(Image.open(out_dir / record["file"]).convert("RGB"))
        expected_image, expected_labels = render_portrait(seed, 64, 32)
        assert np.array_equal(image, expected_image)
        assert record == {"file": record["file"], **expected_labels}
    assert sorted(p.name for p in out_dir.iterdir()) == sorted([json.loads(l)["file"] for l in lines]
                                                               + ["labels.jsonl"])


def test_demo_dataset_contact_sheet(tmp_path):
    sheet = tmp_path / "docs" / "sheet.png"
    assert main(["demo-dataset", str(tmp_path / "d"), "--count", "4", "--sheet", str(sheet)]) == 0
    assert Image.open(sheet).size[0] > 4 * 64
    caption = sheet.with_suffix(".md").read_text()
    assert caption.count("\n| 1,") == 4


@pytest.mark.parametrize("arguments, message", [
    (["--count", "0"], "--count must be at least 1"),
    (["--size", "100x100"], "2:1"),
    (["--size", "big"], "HEIGHTxWIDTH"),
    (["--seed", "-1"], "--seed"),
])
def test_demo_dataset_bad_arguments_give_one_line(tmp_path, capsys, arguments, message):
    assert main(["demo-dataset", str(tmp_path / "d"), *arguments]) == 1
    error = capsys.readouterr().err
    assert error.count("\n") == 1 and message in error
    assert not (tmp_path / "d").exists()


def test_demo_dataset_refuses_a_file_as_directory(tmp_path, capsys):
    target = tmp_path / "taken"
    target.write_text("not a directory")
    assert main(["demo-dataset", str(target), "--count", "1"]) == 1
    error = capsys.readouterr().err
    assert error.count("\n") == 1 and "taken" in error and "not a directory" in error


@pytest.mark.parametrize("feature, field", [("hair_band", "hair_band_colour"),
                                            ("mouth_open", "mouth_openness")])
def test_a_portrait_with_and_without_a_feature_differs_in_that_feature_only(feature, field):
    from ganinterface.demo.portraits import with_and_without

    shown = 0
    for seed in range(40):
        attributes = portraits.sample_attributes(np.random.default_rng(seed))
        drawn, plain = with_and_without(seed, feature)
        assert getattr(plain, field) in (None, 0.0) and getattr(drawn, field) not in (None, 0.0)
        assert attributes in (drawn, plain)  # the seed's own portrait is one of the two
        shown += attributes == drawn
        others = {f.name for f in dataclasses.fields(attributes)} - {field}
        assert all(getattr(drawn, n) == getattr(plain, n) == getattr(attributes, n) for n in others)
    assert 0 < shown < 40
    with pytest.raises(ValueError, match="no counterfactual for 'tilt'"):
        with_and_without(0, "tilt")
