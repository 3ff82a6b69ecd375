import numpy as np
import pytest

from ganinterface.engine.analysis import (AnalysisError, anchor_from, locate_peak,
                                          propose_feature_edit, rank_channels)
from ganinterface.engine.scene import Mask, Rect

H, W, C = 12, 8, 10
REGION = np.zeros((H, W), np.float32)
REGION[6:10, 2:6] = 1.0  # the "mouth"


def _features(rng, n=1):
    """Noise everywhere, channel 3 lit inside the region, channel 7 dimmed inside it."""
    features = rng.normal(size=(n, C, H, W))
    features[:, 3, 6:10, 2:6] += 4.0
    features[:, 7, 6:10, 2:6] -= 3.0
    return features


def _naive_score(features, region, c):
    """Loop over seeds and pixels; soft weights region / 1 - region; std over everything."""
    inside, outside = [], []
    for sample in features:
        weighted_in = sum(sample[c, y, x] * region[y, x] for y in range(H) for x in range(W))
        weighted_out = sum(sample[c, y, x] * (1 - region[y, x]) for y in range(H) for x in range(W))
        inside.append(weighted_in / region.sum())
        outside.append(weighted_out / (1 - region).sum())
    values = features[:, c].ravel()
    std = np.sqrt(np.mean((values - values.mean()) ** 2))
    return (np.mean(inside) - np.mean(outside)) / std


def test_rank_channels_finds_the_planted_channels_and_matches_a_naive_computation():
    rng = np.random.default_rng(0)
    features = _features(rng, n=3)
    soft = REGION.copy()
    soft[5, 2:6] = 0.5
    ranking = rank_channels(features, soft)
    assert ranking[0].channel == 3 and ranking[-1].channel == 7
    for entry in ranking:
        assert entry.score == pytest.approx(_naive_score(features, soft, entry.channel), rel=1e-9)
    assert [e.score for e in ranking] == sorted((e.score for e in ranking), reverse=True)
    single = rank_channels(features[0], soft)  # (C, h, w) works too
    assert single[0].channel == 3


def test_region_given_at_image_resolution_is_shrunk_to_the_layer():
    rng = np.random.default_rng(1)
    features = _features(rng)
    big = REGION.repeat(4, axis=0).repeat(4, axis=1)
    assert [e.channel for e in rank_channels(features, big)] == \
        [e.channel for e in rank_channels(features, REGION)]


def test_region_must_be_partial():
    with pytest.raises(AnalysisError, match="cover part"):
        rank_channels(np.zeros((2, 4, 4)), np.ones((4, 4)))
    with pytest.raises(AnalysisError, match="shape"):
        rank_channels(np.zeros((4, 4)), np.ones((4, 4)))


def test_propose_feature_edit_turns_b_into_a():
    rng = np.random.default_rng(2)
    with_feature = _features(rng, n=4)
    without = rng.normal(size=(4, C, H, W))
    proposal = propose_feature_edit(with_feature, without, REGION, top_k=2)
    assert set(proposal.channels) == {3, 7}
    amounts = dict(zip(proposal.channels, proposal.amounts))
    # the plain difference of region means, by hand
    for c in (3, 7):
        expected = with_feature[:, c, 6:10, 2:6].mean() - without[:, c, 6:10, 2:6].mean()
        assert amounts[c] == pytest.approx(expected, rel=1e-9)
    assert amounts[3] > 3 and amounts[7] < -2
    mask = Mask((Rect(0.25, 0.5, 0.75, 10 / 12),))
    grouped = proposal.to_edits("b16.conv1", mask)
    assert [(e.channels, e.amount) for e in grouped] == [((3,), amounts[3]), ((7,), amounts[7])]
    per_channel = proposal.to_edits("b16.conv1", mask, strength=0.5, per_channel=True)
    assert sorted(e.amount for e in per_channel) == pytest.approx(sorted(0.5 * a for a in amounts.values()))


def test_propose_feature_edit_with_one_region_per_example_measures_where_each_feature_sits():
    """The feature sits at a different place on each example; a shared region wide enough for all
    dilutes the difference, per-example regions measure it fully.  Checked against a hand loop."""
    rng = np.random.default_rng(4)
    n_a, n_b = 3, 2
    with_feature = rng.normal(size=(n_a, C, H, W))
    without = rng.normal(size=(n_b, C, H, W))
    regions = np.zeros((n_a + n_b, H, W))
    for i, top in enumerate((1, 4, 7, 2, 6)):
        regions[i, top:top + 3, 2:5] = 1.0
        regions[i, top + 3, 2:5] = 0.5  # soft edge
        if i < n_a:
            with_feature[i, 5, top:top + 3, 2:5] += 3.0
    proposal = propose_feature_edit(with_feature, without, regions, top_k=1)
    assert proposal.channels == (5,)

    def mean_inside(sample, region):
        total = sum(sample[5, y, x] * region[y, x] for y in range(H) for x in range(W))
        return total / sum(region[y, x] for y in range(H) for x in range(W))

    expected = (np.mean([mean_inside(f, r) for f, r in zip(with_feature, regions[:n_a])])
                - np.mean([mean_inside(f, r) for f, r in zip(without, regions[n_a:])]))
    assert proposal.amounts[0] == pytest.approx(expected, rel=1e-9)
    shared = np.clip(regions.sum(axis=0), 0, 1)
    diluted = propose_feature_edit(with_feature, without, shared, top_k=1)
    assert diluted.channels == (5,) and diluted.amounts[0] < 0.7 * proposal.amounts[0]
    with pytest.raises(AnalysisError, match="one per example"):
        propose_feature_edit(with_feature, without, regions[:4])
    empty = regions.copy()
    empty[0] = 0.0
    with pytest.raises(AnalysisError, match="every example"):
        propose_feature_edit(with_feature, without, empty)


def test_locate_peak_is_the_centroid_of_the_blob():
    y, x = np.mgrid[0:32, 0:16]
    cx, cy = 10.5, 20.0  # in pixels
    blob = np.exp(-((x + 0.5 - cx) ** 2 + (y + 0.5 - cy) ** 2) / (2 * 1.5 ** 2))
    noisy = blob + np.random.default_rng(3).normal(scale=0.01, size=blob.shape)
    noisy[2, 2] = 5.0  # a single hot pixel far away must not win
    peak = locate_peak(noisy)
    assert peak.x == pytest.approx(cx / 16, abs=0.02)
    assert peak.y == pytest.approx(cy / 32, abs=0.02)
    wider = locate_peak(np.exp(-((x + 0.5 - cx) ** 2 + (y + 0.5 - cy) ** 2) / (2 * 3.0 ** 2)))
    assert wider.spread > peak.spread > 0


def test_locate_peak_near_a_place_ignores_a_brighter_spot_beyond_reach():
    y, x = np.mgrid[0:32, 0:16]

    def blob(cx, cy, height):  # centre in pixels
        return height * np.exp(-((x + 0.5 - cx) ** 2 + (y + 0.5 - cy) ** 2) / (2 * 1.2 ** 2))

    values = blob(8.0, 12.0, 1.0) + blob(8.0, 22.0, 2.0)  # a mouth, and a brighter chin below it
    assert locate_peak(values).y == pytest.approx(22.0 / 32, abs=0.02)
    near = locate_peak(values, near=(8.0 / 16, 13.0 / 32, 0.15))  # 0.15 heights: 4.8 px
    assert near.y == pytest.approx(12.0 / 32, abs=0.02) and near.x == pytest.approx(0.5, abs=0.02)
    # a reach smaller than a pixel still looks at the pixel nearest to the place
    assert np.isfinite(locate_peak(values, near=(0.5, 0.4, 1e-6)).y)


def test_anchor_from_uses_the_mean_of_the_channels():
    features = np.zeros((3, 16, 16))
    features[0, 4, 12] = 1.0
    features[1, 4, 12] = 1.0
    features[2, 12, 2] = 5.0  # not an anchor channel
    anchor = anchor_from(features, [0, 1], "b16.conv1", follow_scale=True)
    assert (anchor.layer, anchor.channels, anchor.follow_scale) == ("b16.conv1", (0, 1), True)
    assert anchor.x == pytest.approx(12.5 / 16) and anchor.y == pytest.approx(4.5 / 16)
    with pytest.raises(AnalysisError, match="within 0..2"):
        anchor_from(features, [3], "b16.conv1")


def _plateau_with_distant_spike():
    values = np.zeros((16, 16))
    values[8:, 8:] = 1.0  # a quarter of the map: the 90th percentile is 1
    values[0, 0] = 5.0  # a lone spike, blurred down to 5/9, far outside the window
    return values


@pytest.mark.parametrize("make", [
    lambda: np.zeros((8, 8)),
    lambda: -np.ones((8, 8)),
    # the hottest pixel lies far from the blurred maximum and nothing near that is above the
    # 90th percentile (most of the map is one bright plateau)
    lambda: _plateau_with_distant_spike(),
])
def test_locate_peak_never_returns_nan(make):
    peak = locate_peak(make())
    assert np.isfinite([peak.x, peak.y, peak.spread]).all()
    assert 0 <= peak.x <= 1 and 0 <= peak.y <= 1


def test_a_hot_corner_pixel_does_not_beat_a_bright_area():
    peak = locate_peak(_plateau_with_distant_spike())
    assert peak.x > 0.5 and peak.y > 0.5


def test_spread_agrees_across_resolutions_and_one_pixel_has_one():
    y, x = np.mgrid[0:64, 0:64]
    blob = np.where(np.hypot(x + 0.5 - 40, y + 0.5 - 24) < 6, 1.0, 0.0)  # a disc, radius 6 px
    fine = locate_peak(blob)
    coarse = locate_peak(blob.reshape(16, 4, 16, 4).mean(axis=(1, 3)))
    assert coarse.x == pytest.approx(fine.x, abs=0.02) and coarse.y == pytest.approx(fine.y, abs=0.02)
    assert coarse.spread == pytest.approx(fine.spread, rel=0.3)
    single = np.zeros((8, 8))
    single[3, 3] = 1.0
    # a lit square 1/8 high: sqrt(2 / 12) / 8
    assert locate_peak(single).spread == pytest.approx(np.sqrt(2 / 12) / 8)
