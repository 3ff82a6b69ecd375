"""Animations as lists of Scenes: interpolation between keyframes and recipe strength over time.

Nothing here renders: each function returns Scenes (with ``w`` set, or with a recipe applied at a
strength), and the caller renders them with the same Renderer as any still image.  Latents are
blended with ``lerp`` in W (the usual choice: W is roughly linear) or ``slerp`` in Z (z is Gaussian,
so a straight line would pass through unlikely, low-norm vectors).  Mapping z or seeds to ws needs a
generator, so those steps come in as functions (e.g. ``Renderer.base_ws``).
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np

from ganinterface.engine.latents import class_vector, lerp, slerp, z_from_seed
from ganinterface.engine.scene import Recipe, Scene

EASINGS = ("linear", "ease")
CURVES = ("linear", "ease", "ping-pong", "talk")
LOOPING_CURVES = ("ping-pong", "talk")


class AnimationError(ValueError):
    """Animation settings that cannot work; the message is one line the user can act on."""


# ---- timing ----------------------------------------------------------------------------------------

def ease_in_out(t: float) -> float:
    """Cosine ease: starts and ends at rest, 0 -> 0, 0.5 -> 0.5, 1 -> 1."""
    return 0.5 - 0.5 * math.cos(math.pi * t)


def frame_times(frame_count: int, loop: bool) -> list[float]:
    """Evenly spaced times in [0, 1] for ``frame_count`` frames.

    Without ``loop`` the first and last frames sit exactly on 0 and 1; with ``loop`` the last frame
    stops one step short of 1, so playing the frames in a loop has no repeated frame at the seam.
    """
    if frame_count < 1:
        raise AnimationError(f"an animation needs at least 1 frame, got {frame_count}")
    if loop:
        return [index / frame_count for index in range(frame_count)]
    if frame_count == 1:
        return [0.0]
    return [index / (frame_count - 1) for index in range(frame_count)]


def _keyframe_positions(keyframe_count: int, frame_count: int, loop: bool,
                        easing: str) -> list[tuple[int, int, float]]:
    """For each frame: (keyframe before, keyframe after, blend 0..1 between them)."""
    if easing not in EASINGS:
        raise AnimationError(f"easing must be one of {', '.join(EASINGS)}, got {easing!r}")
    if keyframe_count < 2:
        raise AnimationError(f"interpolation needs at least 2 keyframes, got {keyframe_count}")
    segments = keyframe_count if loop else keyframe_count - 1
    positions = []
    for time in frame_times(frame_count, loop):
        segment = min(int(time * segments), segments - 1)
        blend = time * segments - segment
        if easing == "ease":
            blend = ease_in_out(blend)
        positions.append((segment, (segment + 1) % keyframe_count, blend))
    return positions


# ---- latent paths ----------------------------------------------------------------------------------

@dataclasses.dataclass(frozen=True, eq=False)
class LatentKeyframe:
    """A W / W+ latent keyframe with the detail maps and noise maps of the picture it was projected
    from (a plain array is a latent keyframe without any)."""

    w: np.ndarray
    detail: Mapping[str, np.ndarray] | None = None
    noise: Mapping[str, np.ndarray] | None = None


def latent_keyframe(w: np.ndarray, detail: Mapping[str, np.ndarray] | None = None,
                    noise: Mapping[str, np.ndarray] | None = None) -> np.ndarray | LatentKeyframe:
    """``w`` as a keyframe: the bare array when there are no maps."""
    return LatentKeyframe(w, detail or None, noise or None) if detail or noise else w


def as_latent_keyframe(keyframe: np.ndarray | LatentKeyframe) -> LatentKeyframe:
    """Any latent keyframe as a LatentKeyframe (maps None where it has none)."""
    return keyframe if isinstance(keyframe, LatentKeyframe) else LatentKeyframe(keyframe)


def w_path(keyframe_ws: Sequence[np.ndarray], frame_count: int, *, loop: bool = False,
           easing: str = "linear") -> list[np.ndarray]:
    """Blend W or W+ latents (all of one shape) linearly from keyframe to keyframe."""
    latents = [np.asarray(w, dtype=np.float32) for w in keyframe_ws]
    _check_same_shape(latents)
    return [lerp(latents[a], latents[b], t)
            for a, b, t in _keyframe_positions(len(latents), frame_count, loop, easing)]


def z_path(keyframe_zs: Sequence[np.ndarray], frame_count: int, *, loop: bool = False,
           easing: str = "linear") -> list[np.ndarray]:
    """Blend z vectors spherically from keyframe to keyframe."""
    latents = [np.asarray(z, dtype=np.float32) for z in keyframe_zs]
    _check_same_shape(latents)
    return [slerp(latents[a], latents[b], t)
            for a, b, t in _keyframe_positions(len(latents), frame_count, loop, easing)]


def _check_same_shape(latents: Sequence[np.ndarray]) -> None:
    shapes = {latent.shape for latent in latents}
    if len(shapes) > 1:
        raise AnimationError("keyframe latents differ in shape "
                             f"({', '.join(str(s) for s in sorted(shapes))}); use all W or all W+")


# ---- scenes ----------------------------------------------------------------------------------------

def interpolate_w(base: Scene, seeds: Sequence[int], frame_count: int,
                  ws_of: Callable[[Scene], np.ndarray], *, loop: bool = False,
                  easing: str = "linear") -> list[Scene]:
    """Scenes blending, in W, the latents of ``seeds`` as ``base`` would draw them.

    ``ws_of(scene)`` gives a scene's latent before edits (``Renderer.base_ws``), so truncation and
    class come from ``base`` and every keyframe frame renders exactly as that seed does.  The
    frames keep ``base``'s edits and settings; only ``w`` changes.
    """
    keyframe_ws = [ws_of(base.replace(seed=seed, w=None)) for seed in seeds]
    return [base.replace(w=w, noise_maps=None, detail_maps=None)
            for w in w_path(keyframe_ws, frame_count, loop=loop, easing=easing)]


def morph(base: Scene, keyframes: Sequence[np.ndarray | LatentKeyframe], frame_count: int,
          num_ws: int, *, stored_noise: Mapping[str, np.ndarray] | None = None,
          loop: bool = False, easing: str = "linear") -> list[Scene]:
    """Scenes blending, in W, the given latents (e.g. projected pictures); W latents are taken as
    W+ rows when some keyframe is W+.  The keyframes' detail maps (``Scene.detail_maps``) are
    blended alike, a keyframe without a layer's map counting as zeros there, and so are their
    noise maps, one without a layer's map counting as the model's ``stored_noise`` there (what it
    renders with).  The frames keep ``base``'s edits and settings, not its noise or detail maps."""
    keyframes = [as_latent_keyframe(keyframe) for keyframe in keyframes]
    latents = [np.asarray(keyframe.w, dtype=np.float32) for keyframe in keyframes]
    if any(w.ndim == 2 for w in latents):
        latents = [np.broadcast_to(w, (num_ws, w.shape[-1])) if w.ndim == 1 else w for w in latents]
    ws = w_path(latents, frame_count, loop=loop, easing=easing)
    details = _map_path([k.detail for k in keyframes], frame_count, loop, easing,
                        lambda _name, shape: np.zeros(shape, np.float32))
    noises = _map_path([k.noise for k in keyframes], frame_count, loop, easing,
                       lambda name, _shape: _stored(stored_noise, name))
    return [base.replace(w=w, detail_maps=detail, noise_maps=noise)
            for w, detail, noise in zip(ws, details, noises)]


def _stored(stored_noise: Mapping[str, np.ndarray] | None, name: str) -> np.ndarray:
    if stored_noise is None or name not in stored_noise:
        raise AnimationError(f"a keyframe has no noise map for layer {name} and the model stores none "
                             "to blend with")
    return np.asarray(stored_noise[name], np.float32)


def _map_path(keyframe_maps: Sequence[Mapping[str, np.ndarray] | None], frame_count: int,
              loop: bool, easing: str, missing: Callable[[str, tuple[int, ...]], np.ndarray],
              ) -> list[dict[str, np.ndarray] | None]:
    """Per frame, the keyframes' maps (layer name -> array) blended; ``missing(name, shape)`` stands
    in for a keyframe without that layer's map."""
    layers = sorted(set().union(*(maps or {} for maps in keyframe_maps)))
    if not layers:
        return [None] * frame_count
    shapes = {name: next(m[name].shape for m in keyframe_maps if m and name in m) for name in layers}
    filled = [{name: np.asarray(maps[name], np.float32) if maps and name in maps
               else missing(name, shapes[name]) for name in layers} for maps in keyframe_maps]
    return [{name: lerp(filled[a][name], filled[b][name], t) for name in layers}
            for a, b, t in _keyframe_positions(len(filled), frame_count, loop, easing)]


def interpolate_z(base: Scene, seeds: Sequence[int], frame_count: int, z_dim: int,
                  ws_of_z: Callable[[np.ndarray], np.ndarray], *, loop: bool = False,
                  easing: str = "linear") -> list[Scene]:
    """Scenes blending, in Z, the z vectors of ``seeds``; ``ws_of_z`` maps (1, z_dim) z to ws.

    ``ws_of_z`` should apply ``base``'s truncation and class, as the mapping network does for a seed.
    """
    keyframe_zs = [z_from_seed(seed, z_dim) for seed in seeds]
    return [base.replace(w=ws_of_z(z), noise_maps=None, detail_maps=None)
            for z in z_path(keyframe_zs, frame_count, loop=loop, easing=easing)]


def curve_values(curve: str, frame_count: int, cycles: float = 1.0) -> np.ndarray:
    """Strength in [0, 1] for each frame.

    "linear" and "ease" ramp 0 -> 1 over the animation (first frame 0, last 1); "ping-pong"
    goes 0 -> 1 -> 0 linearly and "talk" follows a sine, 0 -> 1 -> 0 like a mouth opening and
    closing, ``cycles`` times.  The looping curves leave out the final frame that would repeat the
    first, so the frames loop seamlessly.
    """
    if curve not in CURVES:
        raise AnimationError(f"curve must be one of {', '.join(CURVES)}, got {curve!r}")
    if not cycles > 0:
        raise AnimationError(f"cycles must be positive, got {cycles}")
    times = np.array(frame_times(frame_count, loop=curve in LOOPING_CURVES), dtype=np.float64)
    if curve == "linear":
        return times
    if curve == "ease":
        return 0.5 - 0.5 * np.cos(np.pi * times)
    phase = (times * cycles) % 1.0
    if curve == "ping-pong":
        return 1.0 - np.abs(2.0 * phase - 1.0)
    return 0.5 - 0.5 * np.cos(2.0 * np.pi * phase)


def recipe_strength(base: Scene, recipe: Recipe, frame_count: int, curve: str = "talk", *,
                    cycles: float = 1.0, low: float = 0.0, high: float = 1.0) -> list[Scene]:
    """``base`` with ``recipe`` applied at a strength following ``curve`` from ``low`` to ``high``.

    Only the amounts change from frame to frame, so the edits' masks (and any anchor placement) are
    the same in every frame.
    """
    strengths = low + (high - low) * curve_values(curve, frame_count, cycles)
    return [recipe.scaled(float(strength)).applied_to(base) for strength in strengths]


def z_mapper(renderer: Any, base: Scene) -> Callable[[np.ndarray], np.ndarray]:
    """``z (1, z_dim) -> ws (num_ws, w_dim)`` through ``renderer``'s mapping network, with
    ``base``'s class and truncation, exactly as the renderer maps a seed (for ``interpolate_z``)."""
    import torch

    generator, device = renderer.generator, renderer.device
    label = class_vector(base.class_index, generator.c_dim)
    c = None if label is None else torch.from_numpy(label).to(device)

    def ws_of_z(z: np.ndarray) -> np.ndarray:
        with torch.no_grad():
            ws = generator.mapping(torch.from_numpy(np.asarray(z, dtype=np.float32)).to(device), c,
                                   truncation_psi=base.truncation_psi,
                                   truncation_cutoff=base.truncation_cutoff)
        return ws[0].cpu().numpy()

    return ws_of_z
