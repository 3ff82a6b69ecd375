import math

import numpy as np
import pytest

from ganinterface.engine.animation import (
    AnimationError,
    LatentKeyframe,
    curve_values,
    frame_times,
    interpolate_w,
    interpolate_z,
    morph,
    recipe_strength,
    w_path,
    z_path,
)
from ganinterface.engine.kinds import FeatureEdit, StyleMix
from ganinterface.engine.scene import Mask, Rect, Recipe, Scene


def _fake_ws(scene):
    """A stand-in for Renderer.base_ws: a W+ latent that depends on seed and truncation."""
    rng = np.random.RandomState(scene.seed + 1000)
    return (rng.randn(4, 3) * scene.truncation_psi).astype(np.float32)


def test_frame_times_with_and_without_loop():
    assert frame_times(5, loop=False) == [0.0, 0.25, 0.5, 0.75, 1.0]
    assert frame_times(4, loop=True) == [0.0, 0.25, 0.5, 0.75]
    assert frame_times(1, loop=False) == [0.0]
    with pytest.raises(AnimationError):
        frame_times(0, loop=False)


def test_w_path_hits_keyframes_and_is_linear_between():
    a, b, c = np.zeros(2), np.array([4.0, 8.0]), np.array([0.0, -4.0])
    path = w_path([a, b, c], frame_count=5)
    expected = [[0, 0], [2, 4], [4, 8], [2, 2], [0, -4]]
    np.testing.assert_allclose(np.stack(path), expected, atol=1e-6)
    assert all(p.dtype == np.float32 for p in path)


def test_w_path_loop_returns_towards_the_first_keyframe():
    a, b = np.array([0.0]), np.array([8.0])
    path = w_path([a, b], frame_count=4, loop=True)
    np.testing.assert_allclose(np.concatenate(path), [0, 4, 8, 4], atol=1e-6)


def test_w_path_ease_slows_at_keyframes():
    path = np.concatenate(w_path([np.array([0.0]), np.array([1.0])], frame_count=5, easing="ease"))
    expected = [(1 - math.cos(math.pi * t)) / 2 for t in (0, 0.25, 0.5, 0.75, 1)]
    np.testing.assert_allclose(path, expected, atol=1e-6)
    assert path[1] < 0.25 and path[3] > 0.75


def test_w_path_refuses_mixed_shapes_and_single_keyframes():
    with pytest.raises(AnimationError, match="shape"):
        w_path([np.zeros(3), np.zeros((2, 3))], 4)
    with pytest.raises(AnimationError, match="at least 2 keyframes"):
        w_path([np.zeros(3)], 4)
    with pytest.raises(AnimationError, match="easing"):
        w_path([np.zeros(3), np.ones(3)], 4, easing="bounce")


def _angle(u, v):
    return math.acos(np.clip(np.dot(u, v) / (np.linalg.norm(u) * np.linalg.norm(v)), -1, 1))


def test_z_path_slerp_endpoints_and_midpoint():
    z_dim = 64
    za = np.random.RandomState(3).randn(z_dim)
    zb = np.random.RandomState(9).randn(z_dim)
    path = z_path([za, zb], frame_count=3)
    np.testing.assert_allclose(path[0], za, rtol=1e-6)
    np.testing.assert_allclose(path[2], zb, rtol=1e-5)
    middle = path[1].astype(np.float64)
    # on the great circle halfway between the two directions, with the mean length
    assert _angle(middle, za) == pytest.approx(_angle(za, zb) / 2, abs=1e-5)
    assert _angle(middle, zb) == pytest.approx(_angle(za, zb) / 2, abs=1e-5)
    assert np.linalg.norm(middle) == pytest.approx((np.linalg.norm(za) + np.linalg.norm(zb)) / 2, rel=1e-5)
    # a straight line would have lost length in the middle
    assert np.linalg.norm((za + zb) / 2) < 0.9 * np.linalg.norm(middle)


def test_interpolate_w_uses_the_seeds_latents_and_keeps_the_rest_of_the_scene():
    edit = StyleMix(seed=5, first=2)
    base = Scene(seed=77, truncation_psi=0.5, edits=(edit,), noise_mode="none")
    scenes = interpolate_w(base, [1, 2], frame_count=3, ws_of=_fake_ws)
    ws1 = _fake_ws(Scene(seed=1, truncation_psi=0.5))
    ws2 = _fake_ws(Scene(seed=2, truncation_psi=0.5))
    np.testing.assert_array_equal(scenes[0].w, ws1)
    np.testing.assert_allclose(scenes[1].w, (ws1 + ws2) / 2, atol=1e-6)
    np.testing.assert_allclose(scenes[2].w, ws2, atol=1e-6)
    for scene in scenes:
        assert scene.edits == (edit,) and scene.truncation_psi == 0.5 and scene.noise_mode == "none"


def test_interpolate_z_draws_z_from_seeds_like_gen_images():
    z_dim, seen = 16, []

    def ws_of_z(z):
        seen.append(z.copy())
        return np.repeat(z, 2, axis=0)  # (2, z_dim): a fake W+ of the z

    scenes = interpolate_z(Scene(), [4, 8, 15], frame_count=6, z_dim=z_dim, ws_of_z=ws_of_z, loop=True)
    assert len(scenes) == 6 and scenes[0].w.shape == (2, z_dim)
    reference = {seed: np.random.RandomState(seed).randn(1, z_dim) for seed in (4, 8, 15)}
    np.testing.assert_allclose(seen[0], reference[4], rtol=1e-6)
    np.testing.assert_allclose(seen[2], reference[8], rtol=1e-5)
    np.testing.assert_allclose(seen[4], reference[15], rtol=1e-5)
    # frame 5 is halfway from the last keyframe back to the first (the loop closes)
    back = seen[5][0].astype(np.float64)
    assert _angle(back, reference[15][0]) == pytest.approx(_angle(back, reference[4][0]), abs=1e-5)


def test_curve_values_against_formulas():
    np.testing.assert_allclose(curve_values("linear", 5), [0, 0.25, 0.5, 0.75, 1])
    ease = curve_values("ease", 5)
    assert ease[0] == pytest.approx(0) and ease[2] == pytest.approx(0.5) and ease[4] == pytest.approx(1)
    assert ease[1] == pytest.approx(math.sin(math.pi / 8) ** 2)
    # ping-pong: a triangle wave written piecewise
    frames, cycles = 8, 2
    expected = []
    for index in range(frames):
        phase = (index * cycles / frames) % 1
        expected.append(2 * phase if phase <= 0.5 else 2 - 2 * phase)
    np.testing.assert_allclose(curve_values("ping-pong", frames, cycles), expected, atol=1e-12)
    # talk: sin^2 of the phase, the same curve as (1 - cos) / 2
    talk = curve_values("talk", 12, cycles=3)
    np.testing.assert_allclose(talk, [math.sin(math.pi * 3 * i / 12) ** 2 for i in range(12)], atol=1e-12)
    assert talk[0] == pytest.approx(0) and talk[2] == pytest.approx(1)


def test_talk_loop_is_seamless():
    talk = curve_values("talk", 24, cycles=2)
    following = math.sin(math.pi * 2 * 24 / 24) ** 2  # the frame after the last = the first
    assert following == pytest.approx(talk[0], abs=1e-12)
    assert talk.max() <= 1 and talk.min() >= 0


def test_curve_values_refuse_bad_settings():
    with pytest.raises(AnimationError, match="curve"):
        curve_values("wobble", 4)
    with pytest.raises(AnimationError, match="cycles"):
        curve_values("talk", 4, cycles=0)


def test_recipe_strength_scales_amounts_by_the_curve():
    mask = Mask(shapes=(Rect(0.3, 0.6, 0.7, 0.8),))
    recipe = Recipe(edits=(FeatureEdit("b16.conv0", (1, 2), mask, amount=2.0),
                           StyleMix(seed=3, first=4)))
    base = Scene(seed=11, edits=(FeatureEdit("b8.conv1", (0,), mask, amount=-1.0),))
    scenes = recipe_strength(base, recipe, frame_count=4, curve="talk", cycles=1, low=0.5, high=1.5)
    strengths = [0.5 + math.sin(math.pi * i / 4) ** 2 for i in range(4)]
    for scene, strength in zip(scenes, strengths):
        assert scene.seed == 11
        assert scene.edits[0] == base.edits[0]  # the scene's own edit is untouched
        assert scene.edits[1].amount == pytest.approx(2.0 * strength)
        assert scene.edits[1].mask == mask
        assert scene.edits[2] == StyleMix(seed=3, first=4)


def test_a_morph_blends_the_keyframes_noise_maps_and_not_the_current_scenes():
    a, b = np.zeros((6, 8), np.float32), np.ones((6, 8), np.float32)
    stored = {"b8.conv0": np.full((4, 4), 10.0, np.float32), "b8.conv1": np.full((4, 4), 20.0, np.float32)}
    mine = {"b8.conv0": np.full((4, 4), 2.0, np.float32)}
    current = Scene(noise_maps={"b8.conv1": np.zeros((4, 4), np.float32)})
    frames = morph(current, [LatentKeyframe(a, noise=mine), b], 3, 6, stored_noise=stored)
    assert [sorted(f.noise_maps) for f in frames] == [["b8.conv0"]] * 3
    # keyframe b has no map on b8.conv0: it renders with the model's stored one there
    assert [float(f.noise_maps["b8.conv0"][0, 0]) for f in frames] == [2.0, 6.0, 10.0]
    plain = morph(current, [a, b], 3, 6, stored_noise=stored)
    assert all(f.noise_maps is None and f.detail_maps is None for f in plain)
    with pytest.raises(AnimationError, match="no noise map for layer b8.conv0"):
        morph(Scene(), [LatentKeyframe(a, noise=mine), b], 3, 6, stored_noise={})


def test_seed_interpolations_drop_the_current_scenes_noise_and_detail_maps():
    maps = Scene(noise_maps={"b8.conv0": np.ones((4, 4), np.float32)},
                 detail_maps={"b8.conv0": np.ones((2, 4, 4), np.float32)})
    for scenes in (interpolate_w(maps, [1, 2], 3, ws_of=_fake_ws),
                   interpolate_z(maps, [1, 2], 3, z_dim=4, ws_of_z=lambda z: np.repeat(z, 2, axis=0))):
        assert all(s.noise_maps is None and s.detail_maps is None for s in scenes)
