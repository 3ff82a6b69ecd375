"""Finding directions from labelled samples, on synthetic data whose answer is known: labels from
known hyperplanes, a style channel planted to control the label; and style-space direction files."""

import json
import types

import numpy as np
import pytest
import torch

from ganinterface.engine.directions import (DirectionError, StyleDirection, boundary_normal,
                                            conditioned, effect_sizes, load_direction,
                                            save_style_direction)
from ganinterface.export.userfiles import UserFileError, read_direction
from ganinterface.search.directions import (Scored, chosen_channels, choose_direction,
                                            style_sensitivity)
from tiny_models import tiny_stylegan2


def unit(v):
    return v / np.linalg.norm(v)


def test_a_logistic_boundary_recovers_the_hyperplane_that_made_the_labels():
    rng = np.random.default_rng(0)
    normal = unit(rng.normal(size=16))
    x = rng.normal(size=(2000, 16)) * 2.0 + 5.0
    labels = ((x - 5.0) @ normal > 0.3).astype(int)
    found = boundary_normal(x, labels)
    assert found @ normal > 0.98  # and it points towards label 1


def test_conditioning_removes_the_other_boundaries_and_keeps_what_is_left():
    rng = np.random.default_rng(1)
    own, other = unit(rng.normal(size=8)), unit(rng.normal(size=8))
    own = unit(own - (own @ other) * other)  # the attribute's own axis, orthogonal to the other's
    mixed = unit(0.6 * own + 0.8 * other)  # a boundary tilted by a correlated attribute
    found = conditioned(mixed, other[None])
    assert abs(found @ other) < 1e-6
    np.testing.assert_allclose(found, own, atol=1e-6)
    with pytest.raises(DirectionError, match="span of the others"):
        conditioned(other, other[None])


def test_effect_sizes_are_mean_gaps_over_the_pooled_spread():
    positive = np.array([[1.0, 5.0], [3.0, 5.0], [5.0, 5.0]])
    negative = np.array([[0.0, 4.0], [2.0, 6.0], [4.0, 5.0]])
    # column 0: gap 1, both variances 4 -> 0.5; column 1: gap 0
    np.testing.assert_allclose(effect_sizes(positive, negative), [0.5, 0.0], atol=1e-12)


class PlantedGenerator:
    """Two layers of 3 styles; the image's red is style a:2 plus b:0, its green is b:0 alone."""

    w_avg = torch.zeros(1)

    def style_sizes(self):
        return {"a": 3, "b": 3}

    def synthesize(self, ws, *, style_offsets, noise_mode):
        base = ws[:, 0, :1]  # (N, 1): each sample's own starting point
        red = base + style_offsets["a"][:, 2:3] + 3.0 * style_offsets["b"][:, 0:1]
        green = base + 3.0 * style_offsets["b"][:, 0:1]
        image = torch.stack([red, green, torch.zeros_like(red)], dim=1)[..., None]  # (N, 3, 1, 1)
        return types.SimpleNamespace(image=image)


class PlantedClassifier(torch.nn.Module):
    """Reads the attribute from red and an unrelated attribute from green."""

    def eval(self):
        return self

    def forward(self, image):
        red, green = image[:, 0, 0, 0], image[:, 1, 0, 0]
        return {"band": torch.stack([-red, red], dim=1) * 4,
                "colour": torch.stack([-green, green], dim=1) * 4}


def test_the_planted_style_channel_is_chosen_over_a_stronger_entangled_one():
    ws = torch.linspace(-0.5, 0.5, 12).reshape(12, 1, 1).numpy().astype(np.float32)
    toward, elsewhere = style_sensitivity(PlantedGenerator(), PlantedClassifier(), ws, "band", 1,
                                          ["a", "b"])
    assert toward[3] > toward[2] > 0  # b:0 moves the band reading most ...
    assert elsewhere[2] == 0 and elsewhere[3] > 0  # ... but also the colour; a:2 moves the band alone
    where = [("a", 0), ("a", 1), ("a", 2), ("b", 0), ("b", 1), ("b", 2)]
    offsets = chosen_channels(toward, elsewhere, np.full(6, 0.5), 1, where)
    assert offsets == (("a", 2, 0.5),)


def test_the_best_direction_reaches_the_flip_aim_then_keeps_the_most():
    def scored(flip, kept):
        return Scored(None, f"{flip}/{kept}", {1: 1.0}, flip, kept)

    options = [scored(0.95, 0.80), scored(0.85, 0.99), scored(0.92, 0.96), scored(0.99, 0.90)]
    assert choose_direction(options, 0.9).method == "0.92/0.96"
    assert choose_direction([scored(0.5, 1.0), scored(0.7, 0.6)], 0.9).method == "0.7/0.6"


def test_style_directions_round_trip_and_check_the_model(tmp_path):
    generator = tiny_stylegan2()
    direction = StyleDirection((("b8.conv1", 2, 1.5), ("b16.conv0", 0, -0.25)), name="open mouth",
                               model_hash="ab" * 32, provenance={"method": "style channels"})
    path = save_style_direction(tmp_path / "open-mouth.json", direction)
    loaded = read_direction(path, generator)
    assert (loaded.offsets, loaded.name, loaded.model_hash, loaded.provenance) == (
        direction.offsets, direction.name, direction.model_hash, direction.provenance)
    assert loaded.to_edit(2.0, "x.json").offsets == direction.offsets
    far = StyleDirection((("b8.conv1", 6, 1.0),))
    with pytest.raises(UserFileError, match=r"far.json: offsets style 6 of b8.conv1, which has 6 \(0..5\)"):
        read_direction(save_style_direction(tmp_path / "far.json", far), generator)


@pytest.mark.parametrize("content, message", [
    ("{", "not valid JSON"),
    ('{"format": "ganinterface.style-direction", "offsets": [["b8.conv1", 2]]}',
     r"offsets\[0\] should be \[layer, channel, offset\]"),
    ('{"format": "ganinterface.style-direction"}', "has no offsets"),
    ('{"format": "ganinterface.style-direction", "offsets": [["b8.conv1", 1, 1.0]], "colour": 1}',
     "unknown field"),
    ('{"format": "something else"}', "not a direction"),
])
def test_a_malformed_style_direction_file_gives_one_line_naming_it(tmp_path, content, message):
    path = tmp_path / "bad.json"
    path.write_text(content)
    with pytest.raises(DirectionError, match=message) as caught:
        load_direction(path)
    assert str(caught.value).startswith(str(path)) and "\n" not in str(caught.value)


def test_a_w_directions_sidecar_loads_its_vector(tmp_path):
    np.save(tmp_path / "smile.npy", np.ones(8, np.float32))
    (tmp_path / "smile.json").write_text(json.dumps({"format": "ganinterface.direction", "first": 2}))
    loaded = load_direction(tmp_path / "smile.json", w_dim=8)
    assert loaded.first == 2 and loaded.vector.shape == (8,)
