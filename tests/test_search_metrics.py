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


def _cv2_delta_e(rgb1, rgb2) -> float:
    """CIEDE2000 of two sRGB colours through OpenCV's own CIELAB conversion."""
    import cv2

    from ganinterface.search.colour import ciede2000

    lab = cv2.cvtColor(np.array([[rgb1, rgb2]], np.float32) / 255, cv2.COLOR_RGB2LAB)[0]
    return float(ciede2000(lab[0], lab[1]))


BROWN_SKIN, LIGHTER_SKIN, MOUTH = (148, 98, 66), (160, 108, 74), (84, 18, 32)


def test_skin_patch_is_the_colour_shift_of_the_skin_inside_the_region_only():
    """A brown face with a dark mouth in the region: after, the skin inside the region is lighter and
    the mouth is repainted in skin; only the skin's own shift counts, as OpenCV's CIELAB gives it."""
    from ganinterface.search.metrics import skin_patch

    before = np.empty((40, 30, 3), np.uint8)
    before[:] = BROWN_SKIN
    before[18:22, 12:18] = MOUTH
    region = np.zeros((40, 30), bool)
    region[15:25, 9:21] = True
    after = before.copy()
    after[region] = LIGHTER_SKIN
    expected = _cv2_delta_e(BROWN_SKIN, LIGHTER_SKIN)
    assert 2 < expected < 6
    assert skin_patch(before, after, region) == pytest.approx(expected, abs=0.3)
    mouth_closed_cleanly = before.copy()
    mouth_closed_cleanly[18:22, 12:18] = BROWN_SKIN
    assert skin_patch(before, mouth_closed_cleanly, region) == 0


def _labelled_region(box, height=128, width=64) -> np.ndarray:
    """A renderer label's normalised box as pixels, dilated as the edit report dilates masks."""
    x0, y0, x1, y1 = box
    region = np.zeros((height, width), bool)
    region[int(y0 * height):int(np.ceil(y1 * height)), int(x0 * width):int(np.ceil(x1 * width))] = True
    return dilate(region, 3)


def test_skin_patch_of_the_renderers_own_open_and_closed_mouths_is_below_what_is_seen():
    """The procedural renderer draws the same portrait with the mouth open and closed: a perfect
    close, so no patch on any skin tone."""
    from ganinterface.demo import portraits
    from ganinterface.search.metrics import skin_patch

    for seed in range(8):
        opened, closed = portraits.with_and_without(seed, "mouth_open")
        patch = skin_patch(portraits.render_attributes(opened), portraits.render_attributes(closed),
                           _labelled_region(portraits.labels_of(opened)["mouth_box"]))
        assert patch < 1.5, (seed, opened.skin_tone)


HAIR, BAND, LINE = (118, 72, 44), (226, 28, 44), (150, 100, 70)


def _band_removed(edge_colour) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Brown hair with a red band across rows 10-15, and the band repainted as hair except its first
    and last rows, painted ``edge_colour``."""
    before = np.empty((30, 20, 3), np.uint8)
    before[:] = HAIR
    before[10:16] = BAND
    after = before.copy()
    after[10:16] = HAIR
    after[[10, 15]] = edge_colour
    region = np.zeros((30, 20), bool)
    region[6:20] = True
    return before, after, region


def test_seam_is_the_colour_step_from_the_hair_beside_to_the_removed_bands_edges():
    from ganinterface.search.metrics import seam

    assert seam(*_band_removed(HAIR)) == pytest.approx(0, abs=1e-9)
    expected = _cv2_delta_e(HAIR, LINE)
    assert 3 < expected < 15
    assert seam(*_band_removed(LINE)) == pytest.approx(expected, abs=0.3)
    before, after, region = _band_removed(LINE)
    assert np.isnan(seam(before, before, region)), "nothing repainted, no seam"


def test_seam_ignores_edges_that_meet_something_other_than_hair():
    """Above the left of the band is background, not hair: its edge there is the picture's own
    outline."""
    from ganinterface.search.metrics import seam

    before, after, region = _band_removed(HAIR)
    before[:10, :8] = after[:10, :8] = (200, 220, 250)
    after[10, :8] = LINE  # the top edge, beside the sky
    assert seam(before, after, region) == pytest.approx(0, abs=0.01)
    after[[10, 15]] = LINE  # all of it
    assert seam(before, after, region) == pytest.approx(_cv2_delta_e(HAIR, LINE), abs=0.3)


def test_seam_of_the_renderers_own_band_removal_is_below_what_is_seen():
    from ganinterface.demo import portraits
    from ganinterface.search.metrics import seam

    for seed in range(8):
        banded, plain = portraits.with_and_without(seed, "hair_band")
        removal = seam(portraits.render_attributes(banded), portraits.render_attributes(plain),
                       _labelled_region(portraits.labels_of(banded)["band_box"]))
        assert removal < 2.5, (seed, banded.hair_colour)


def test_changed_shares_count_each_other_attribute_separately():
    from ganinterface.search.metrics import changed_shares

    before = {"mouth": np.array([0, 0]), "band": np.array([1, 0]), "hair": np.array([2, 3])}
    after = {"mouth": np.array([1, 1]), "band": np.array([1, 1]), "hair": np.array([2, 3])}
    assert changed_shares(before, after, edited="mouth") == {"band": 0.5, "hair": 0.0}


def _long_band_removed() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Brown hair 60 pixels wide with a red band across rows 10-15, repainted as hair."""
    before = np.empty((30, 60, 3), np.uint8)
    before[:] = HAIR
    before[10:16] = BAND
    after = before.copy()
    after[10:16] = HAIR
    region = np.zeros((30, 60), bool)
    region[6:20] = True
    return before, after, region


def test_seam_counts_a_stripe_at_one_end_of_the_band_in_full():
    """A lighter stripe on the band's last 12 of 60 columns is as visible as one along all of it:
    a mean over the whole edge would give a fifth of its step."""
    from ganinterface.search.metrics import seam

    before, after, region = _long_band_removed()
    after[10:16, -12:] = LINE
    expected = _cv2_delta_e(HAIR, LINE)
    assert seam(before, after, region) == pytest.approx(expected, abs=0.3)
    assert expected > 3


def test_seam_of_a_uniform_small_change_is_that_change():
    """The band repainted in a colour a little off the hair's, evenly: the seam is that small step
    (not raised by taking the worst stretch), and a clean removal from grainy hair stays well below
    the aim of 3."""
    from ganinterface.search.metrics import seam

    before, after, region = _long_band_removed()
    off = tuple(c + 2 for c in HAIR)
    after[10:16] = off
    assert seam(before, after, region) == pytest.approx(_cv2_delta_e(HAIR, off), abs=0.1)
    texture = np.random.default_rng(0).integers(-3, 4, size=before.shape)
    textured_before = np.clip(before + texture * (before == HAIR).all(axis=2)[..., None], 0, 255)
    textured_after = np.clip(after * 0 + np.array(HAIR) + texture, 0, 255)
    assert seam(textured_before.astype(np.uint8), textured_after.astype(np.uint8), region) < 1.5
