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
from ganinterface.search.directions import (DirectionTrials, Scored, chosen_channels,
                                            choose_direction, joined_sides, largest,
                                            learnt_offsets, margins,
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


@pytest.mark.parametrize("state", [1, 0])
def test_learnt_offsets_move_the_planted_channel_and_leave_the_entangled_one(state):
    ws = torch.linspace(-0.5, 0.5, 12).reshape(12, 1, 1).numpy().astype(np.float32)
    classifier = PlantedClassifier()
    image = PlantedGenerator().synthesize(torch.from_numpy(ws), style_offsets={
        "a": torch.zeros(12, 3), "b": torch.zeros(12, 3)}, noise_mode="const").image
    readings = {k: torch.softmax(v, dim=1).numpy() for k, v in classifier(image).items()}
    learnt = learnt_offsets(PlantedGenerator(), classifier, ws, readings, "band", state, ["a", "b"],
                            spread=np.full(6, 0.5), steps=200)
    towards = 1.0 if state == 1 else -1.0  # a:2 raises red, so the band reading
    assert np.sign(learnt[2]) == towards and abs(learnt[2]) > 1.0
    assert abs(learnt[3]) < 0.2 * abs(learnt[2])  # b:0 would change the colour reading too
    assert np.abs(np.delete(learnt, [2, 3])).max() < 0.1  # the L1 penalty: channels that do nothing stay near 0
    where = [("a", 0), ("a", 1), ("a", 2), ("b", 0), ("b", 1), ("b", 2)]
    assert largest(learnt, np.full(6, 0.5), 1, where, sign=-1.0) == (("a", 2, -0.5 * learnt[2]),)


def test_margins_are_in_standard_errors_at_the_aims():
    # flip: aim 0.90 on 100 eligible samples, error sqrt(0.9 * 0.1 / 100) = 0.03;
    # preservation: aim 0.95 on 475 samples, error sqrt(0.95 * 0.05 / 475) = 0.01
    of_flip, of_kept = margins(0.93, 0.97, eligible=100, samples=475)
    assert (of_flip, of_kept) == pytest.approx((1.0, 2.0))


class LinearTrials(DirectionTrials):
    """Flip amount / 20 and preservation 1 - amount / 1000 at any amount, on 475 samples of which
    100 are not yet in state 1: margins (amount / 20 - 0.9) / 0.03 and 5 - amount / 10 (see above),
    equal at amount 35 / (1 / 0.6 + 0.1) = 19.81, where both are 3.02."""

    def __init__(self):
        read = np.zeros((475, 2))
        read[:100, 0] = read[100:, 1] = 1.0
        tuning = types.SimpleNamespace(probabilities={"band": read}, seeds=list(range(475)))
        super().__init__(types.SimpleNamespace(tuning=tuning), classifier=None)
        self.amounts = []

    def at(self, direction, amount, attribute, state):
        self.amounts.append(amount)
        return min(abs(amount) / 20, 1.0), 1 - abs(amount) / 1000


def test_the_amount_is_where_both_margins_meet():
    trials = LinearTrials()
    found = trials.balanced(None, -1.0, "band", 1)
    last_step = 8.0 / 2 ** trials.refinements  # the ladder steps from 16 to 24, halved thrice
    assert found.amount < 0 and abs(abs(found.amount) - 19.81) <= last_step
    assert found.margin == pytest.approx(min((abs(found.amount) / 20 - 0.9) / 0.03,
                                             5 - abs(found.amount) / 10))
    assert found.margin > 3.02 - 0.1 * last_step  # the worse margin falls 0.1 per unit past 19.81
    assert sorted(set(trials.amounts))[:2] == [-24.0, -20.0]  # up the ladder to 24, no further


def test_the_direction_meeting_the_aims_most_ways_then_by_the_most_is_chosen():
    def scored(name, *margins):
        return Scored(None, name, {1: 1.0, 0: -1.0}, 0.9, 0.95, dict(zip((1, 0), margins)))

    options = [scored("narrow both ways", 0.1, 0.2), scored("wide one way", 3.0, 0.5),
               scored("misses one way", 4.0, -0.1)]
    assert choose_direction(options).method == "wide one way"
    assert choose_direction([scored("misses both", -0.5, -0.4),
                             scored("misses one by far", 2.0, -3.0)]).method == "misses one by far"
    assert choose_direction([scored("a", -0.5, -0.4), scored("b", -2.0, -0.3)]).method == "a"
    with pytest.raises(DirectionError, match="no candidate"):
        choose_direction([])


def test_a_style_side_tried_again_at_the_same_amount_is_not_rendered_again():
    rendered = []
    read = np.zeros((4, 2))
    read[:, 0] = 1.0
    tuner = types.SimpleNamespace(tuning=types.SimpleNamespace(probabilities={"band": read, "colour": read},
                                                               seeds=[0, 1, 2, 3]),
                                  images=lambda recipe: rendered.append(recipe.edits[0]) or np.zeros((4, 1)))
    flips = iter([np.array([1, 1, 0, 0]), np.array([1, 0, 0, 0])])
    classifier = types.SimpleNamespace(classify=lambda images: {"band": np.eye(2)[next(flips)], "colour": read})
    trials = DirectionTrials(tuner, classifier)
    up, down = (("b8.conv1", 1, 1.0),), (("b16.conv0", 3, 2.0),)
    first = trials.at(StyleDirection(up), 1.5, "band", 1)
    joined = StyleDirection(up, negative_offsets=down)  # the same side above zero
    assert trials.at(joined, 1.5, "band", 1) == first == (0.5, 1.0)
    assert trials.at(joined, -1.5, "band", 1) == (0.25, 1.0)  # the other side is rendered
    assert len(rendered) == 2


def test_the_best_side_each_way_is_joined_into_one_two_sided_direction():
    adds = StyleDirection((("b8.conv1", 1, 1.0),), name="band")
    removes = StyleDirection((("b8.conv1", 2, 1.0),), name="band", negative_offsets=(("b16.conv0", 3, 2.0),))
    one_sided = StyleDirection((("b16.conv0", 0, 1.0),), name="band")

    def scored(direction, method, up, down):
        return Scored(direction, method, {1: 1.0, 0: -1.0}, 0.9, 0.95, {1: up, 0: down})

    w = Scored(types.SimpleNamespace(), "mean difference", {1: 1.0, 0: -1.0}, 0.9, 0.95, {1: 9.0, 0: 9.0})
    joined = joined_sides([w, scored(adds, "style channels", 0.4, -2.0),
                           scored(removes, "learnt style offsets", -1.0, 0.8)])
    assert joined.offsets == adds.offsets and joined.negative_offsets == removes.negative_offsets
    assert joined.provenance["method"].startswith("above zero style channels, below zero learnt")
    joined = joined_sides([scored(adds, "a", 0.4, -2.0), scored(one_sided, "b", -1.0, 0.8)])
    assert joined.negative_offsets == one_sided.offsets  # a one-sided direction's only side
    assert joined_sides([scored(adds, "a", 0.4, 0.9), scored(removes, "b", -1.0, 0.8)]) is None


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


def test_a_two_sided_style_direction_keeps_its_negative_side(tmp_path):
    generator = tiny_stylegan2()
    below = (("b16.conv0", 1, 0.5),)
    direction = StyleDirection((("b8.conv1", 2, 1.5),), name="hair band", negative_offsets=below)
    loaded = read_direction(save_style_direction(tmp_path / "band.json", direction), generator)
    assert loaded.negative_offsets == below
    edit = loaded.to_edit(-2.0)
    assert edit.active_offsets() == below and loaded.to_edit(2.0).active_offsets() == direction.offsets
    far = StyleDirection((("b8.conv1", 2, 1.0),), negative_offsets=(("b8.conv1", 6, 1.0),))
    with pytest.raises(UserFileError, match=r"far.json: negative_offsets style 6 of b8.conv1"):
        read_direction(save_style_direction(tmp_path / "far.json", far), generator)
    one_sided = save_style_direction(tmp_path / "open.json", StyleDirection((("b8.conv1", 2, 1.0),)))
    assert "negative_offsets" not in json.loads(one_sided.read_text())


@pytest.mark.parametrize("content, message", [
    ("{", "not valid JSON"),
    ('{"format": "ganinterface.style-direction", "offsets": [["b8.conv1", 2]]}',
     r"offsets\[0\] should be \[layer, channel, offset\]"),
    ('{"format": "ganinterface.style-direction"}', "has no offsets"),
    ('{"format": "ganinterface.style-direction", "offsets": [["b8.conv1", 1, 1.0]], "negative_offsets": []}',
     "negative_offsets should be a non-empty list"),
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
