import numpy as np
import pytest

from ganinterface.search.metrics import dilate, flip_rate, locality, mask_area, preservation


def test_flip_rate_counts_only_samples_not_already_in_target():
    before = np.array([0, 0, 0, 1, 1])
    after = np.array([1, 0, 1, 1, 0])
    # eligible: first three; two of them end at 1
    assert flip_rate(before, after, target=1) == pytest.approx(2 / 3)
    assert np.isnan(flip_rate(np.ones(3), np.ones(3), target=1))


def test_locality_is_share_of_absolute_change_inside_region():
    before = np.zeros((4, 4, 3))
    after = before.copy()
    after[0, 0] = [3, 0, 0]  # inside, |change| 3
    after[3, 3] = [0, -1, 0]  # outside, |change| 1
    region = np.zeros((4, 4), bool)
    region[:2, :2] = True
    assert locality(before, after, region) == pytest.approx(0.75)
    assert locality(before, before, region) == 1.0


def test_preservation_ignores_the_edited_attribute():
    before = {"mouth": np.array([0, 0]), "band": np.array([1, 0]), "hair": np.array([2, 3])}
    after = {"mouth": np.array([1, 1]), "band": np.array([1, 1]), "hair": np.array([2, 3])}
    assert preservation(before, after, edited="mouth") == pytest.approx(3 / 4)


def test_dilate_grows_a_point_into_a_disc_and_area_counts_it():
    mask = np.zeros((21, 21))
    mask[10, 10] = 1
    grown = dilate(mask, 3)
    yy, xx = np.mgrid[:21, :21]
    disc = (yy - 10) ** 2 + (xx - 10) ** 2 <= 3.5 ** 2
    assert grown[10, 7] and grown[10, 13] and grown[7, 10] and not grown[10, 14]
    assert np.sum(grown != disc) <= 4  # OpenCV's ellipse kernel vs. an ideal disc, corners aside
    assert mask_area(grown) == pytest.approx(grown.sum() / 441)
    assert np.array_equal(dilate(mask, 0), mask > 0)
