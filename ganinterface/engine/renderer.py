"""Rendering Scenes, with a per-layer cache so a change re-runs only the layers it affects.

The state before layer k depends on: the generator, the noise (mode, and seed when random), the ws
rows read by layers 0..k-1, and the hooks on layers 0..k-1.  ``prefix_keys`` digests exactly that,
layer by layer; a cached state whose key matches is reused, so moving a direction that only touches
rows >= r, or editing features at layer L, restarts synthesis at the first layer that sees the change
(``RenderResult.first_layer``).  Taps (activations shown in the window) are cached the same way.

``render`` never raises for a bad scene: problems come back as ``RenderResult.error``.
"""

from __future__ import annotations

import dataclasses
import logging
import threading
import time
from collections import OrderedDict
from collections.abc import Sequence

import numpy as np
import torch

from ganinterface.engine import edits as edit_ops
from ganinterface.engine.device import pick_device
from ganinterface.engine.latents import class_vector, z_from_seed
from ganinterface.engine.masks import image_margin, rasterize_layer
from ganinterface.engine.scene import (Anchor, DirectionEdit, FeatureCopy, FeatureEdit, Mask,
                                       RegionResample, Scene, StyleMix)
from ganinterface.models.base import NOISE_MODES, GeneratorBase, LayerInfo

Tensor = torch.Tensor
log = logging.getLogger(__name__)

DEFAULT_CACHE_BYTES = 1 << 30


class RenderError(ValueError):
    """The scene cannot be rendered with this generator; the message says why, in one line."""


@dataclasses.dataclass
class RenderResult:
    image: np.ndarray | None  # uint8 (H, W, 3)
    raw: np.ndarray | None  # float32 (img_channels, H, W), unclamped generator output
    features: dict[str, np.ndarray]  # tapped layer -> float32 (C, h, w), after the scene's edits
    ws: np.ndarray | None  # float32 (num_ws, w_dim), after direction edits and style mixes
    first_layer: int  # first layer recomputed (0: full render; len(layers): all from cache)
    seconds: float
    error: str | None = None

    @property
    def ok(self) -> bool:
        return self.error is None


def to_uint8_image(raw: Tensor) -> np.ndarray:
    """(C, H, W) in nominal [-1, 1] -> (H, W, 3) uint8 exactly as NVlabs gen_images.py converts."""
    image = (raw.permute(1, 2, 0) * 127.5 + 128).clamp(0, 255).to(torch.uint8).cpu().numpy()
    if image.shape[2] == 1:
        image = np.repeat(image, 3, axis=2)
    return image[:, :, :3]


def _array(tensor: Tensor) -> np.ndarray:
    """A float32 numpy copy that owns its memory."""
    return np.array(tensor.detach().to(torch.float32).cpu().numpy(), dtype=np.float32, copy=True)


class _LayerCache:
    """Least-recently-used store of tensors (states, taps, images) under a byte budget."""

    def __init__(self, max_bytes: int):
        self.max_bytes = max_bytes
        self._entries: OrderedDict[tuple[str, str], tuple[object, int]] = OrderedDict()
        self._bytes = 0

    @staticmethod
    def _size(value: object) -> int:
        tensors = value.values() if isinstance(value, dict) else [value]
        return sum(t.numel() * t.element_size() for t in tensors if isinstance(t, Tensor))

    def get(self, kind: str, key: str) -> object | None:
        entry = self._entries.get((kind, key))
        if entry is None:
            return None
        self._entries.move_to_end((kind, key))
        return entry[0]

    def has(self, kind: str, key: str) -> bool:
        return (kind, key) in self._entries

    def put(self, kind: str, key: str, value: object) -> None:
        old = self._entries.pop((kind, key), None)
        if old is not None:
            self._bytes -= old[1]
        size = self._size(value)
        self._entries[(kind, key)] = (value, size)
        self._bytes += size
        while self._bytes > self.max_bytes and len(self._entries) > 1:
            _, (_, dropped) = self._entries.popitem(last=False)
            self._bytes -= dropped

    def clear(self) -> None:
        self._entries.clear()
        self._bytes = 0


@dataclasses.dataclass
class _Pass:
    """What one synthesis pass produced, and where it started."""

    image: Tensor | None
    taps: dict[int, Tensor]
    first_layer: int


class Renderer:
    """Renders Scenes with one generator on one device (the generator is moved there)."""

    def __init__(self, generator: GeneratorBase, device: torch.device | str | None = None,
                 cache_bytes: int = DEFAULT_CACHE_BYTES):
        self.device = device if isinstance(device, torch.device) else pick_device(device)
        self.generator = generator.to(self.device).eval()
        self._cache = _LayerCache(cache_bytes)
        self._mapped: OrderedDict[tuple, Tensor] = OrderedDict()
        self._lock = threading.Lock()  # one render at a time
        self._mapping_lock = threading.Lock()  # base_ws may be called from another thread
        self._identity = f"{type(generator).__name__}@{id(generator)}"
        self._rasters: OrderedDict[tuple[Mask, int, int], np.ndarray] = OrderedDict()

    # ---- public -------------------------------------------------------------------------------
    def render(self, scene: Scene, taps: Sequence[str] = ()) -> RenderResult:
        started = time.perf_counter()
        with self._lock, torch.no_grad():
            try:
                return self._render(scene, tuple(taps), started)
            except (RenderError, ValueError) as error:
                message = str(error)
            except Exception as error:  # a bug or a model failure must not kill the render thread
                log.exception("render failed")
                message = f"{type(error).__name__}: {error}"
        return RenderResult(None, None, {}, None, 0, time.perf_counter() - started, message)

    def base_ws(self, scene: Scene) -> np.ndarray:
        """(num_ws, w_dim) float32 before edits: the seed mapped (class, truncation) or scene.w."""
        with torch.no_grad():
            return _array(self._base_ws(scene))

    def layer_features(self, scenes: Sequence[Scene], layer: str) -> np.ndarray:
        """(N, C, h, w) activations of ``layer`` for several scenes (e.g. seeds to rank channels on)."""
        out = []
        for scene in scenes:
            result = self.render(scene, [layer])
            if result.error is not None:
                raise RenderError(f"seed {scene.seed}: {result.error}")
            out.append(result.features[layer])
        return np.stack(out)

    def clear_cache(self) -> None:
        with self._lock, self._mapping_lock:
            self._cache.clear()
            self._mapped.clear()
            self._rasters.clear()

    # ---- latents --------------------------------------------------------------------------------
    def _base_ws(self, scene: Scene) -> Tensor:
        g = self.generator
        if scene.w is not None:
            w = scene.w
            if w.shape == (g.w_dim,):
                w = np.broadcast_to(w, (g.num_ws, g.w_dim))
            elif w.shape != (g.num_ws, g.w_dim):
                raise RenderError(f"scene.w has shape {w.shape}; this model needs ({g.w_dim},) (W) "
                                  f"or ({g.num_ws}, {g.w_dim}) (W+)")
            return torch.from_numpy(np.array(w, dtype=np.float32)).to(self.device)
        return self._mapped_ws(scene.seed, scene.class_index, scene.truncation_psi,
                               scene.truncation_cutoff)

    def _mapped_ws(self, seed: int, class_index: int | None, psi: float, cutoff: int | None) -> Tensor:
        key = (seed, class_index, float(psi), cutoff)
        with self._mapping_lock:
            if key not in self._mapped:
                g = self.generator
                label = class_vector(class_index, g.c_dim)
                z = torch.from_numpy(z_from_seed(seed, g.z_dim)).to(self.device)
                c = None if label is None else torch.from_numpy(label).to(self.device)
                self._mapped[key] = g.mapping(z, c, truncation_psi=psi, truncation_cutoff=cutoff)[0]
                while len(self._mapped) > 64:
                    self._mapped.popitem(last=False)
            self._mapped.move_to_end(key)
            return self._mapped[key]

    def _other_ws(self, scene: Scene, seed: int) -> Tensor:
        """Another seed's ws with the scene's class and truncation (for StyleMix, RegionResample)."""
        return self._mapped_ws(seed, scene.class_index, scene.truncation_psi, scene.truncation_cutoff)

    def _edited_ws(self, scene: Scene) -> Tensor:
        ws = self._base_ws(scene)
        for index, edit in enumerate(scene.edits):
            if not edit.enabled:
                continue
            what = edit_ops.describe(index, edit)
            if isinstance(edit, DirectionEdit):
                ws = edit_ops.apply_direction(ws, edit, what)
            elif isinstance(edit, StyleMix):
                ws = edit_ops.apply_style_mix(ws, self._other_ws(scene, edit.seed), edit, what)
        return ws

    # ---- the render -----------------------------------------------------------------------------
    def _render(self, scene: Scene, taps: tuple[str, ...], started: float) -> RenderResult:
        g = self.generator
        if scene.noise_mode not in NOISE_MODES:
            raise RenderError(f"noise mode must be one of {', '.join(NOISE_MODES)}, "
                              f"got {scene.noise_mode!r}")
        tap_indices = {self._layer_index(name, "tap"): name for name in taps}
        ws = self._edited_ws(scene)
        hooks = self._hooks(scene, ws)
        result = self._synthesize(ws, hooks, scene, set(tap_indices), stop=len(g.layers))
        raw = result.image[0].to(torch.float32)
        # copies: on the CPU .numpy() shares memory with tensors the cache still holds
        features = {name: _array(result.taps[k][0]) for k, name in tap_indices.items()}
        return RenderResult(image=to_uint8_image(raw), raw=_array(raw), features=features,
                            ws=_array(ws), first_layer=result.first_layer,
                            seconds=time.perf_counter() - started)

    def _layer_index(self, name: str, what: str) -> int:
        try:
            return self.generator.layer_index(name)
        except KeyError as error:
            raise RenderError(f"{what}: {error.args[0]}") from None

    def _hooks(self, scene: Scene, ws: Tensor) -> dict[int, edit_ops.KeyedHook]:
        """Hooks per layer index; edits that change nothing (amount 0, empty mask) add none."""
        per_layer: dict[int, list[edit_ops.KeyedHook]] = {}
        for index, edit in enumerate(scene.edits):
            if not edit.enabled or not isinstance(edit, (FeatureEdit, FeatureCopy, RegionResample)):
                continue
            what = edit_ops.describe(index, edit)
            k = edit_ops.check_layer(self.generator, edit.layer, what)
            if isinstance(edit, FeatureEdit):
                hook = self._feature_hook(scene, ws, edit, k, what)
            elif isinstance(edit, FeatureCopy):
                hook = self._copy_hook(scene, ws, edit, k, what)
            else:
                hook = self._resample_hook(scene, edit, k)
            if hook is not None:
                per_layer.setdefault(k, []).append(hook)
        return {k: edit_ops.compose(hooks) for k, hooks in per_layer.items()}

    def _feature_hook(self, scene: Scene, ws: Tensor, edit: FeatureEdit, k: int,
                      what: str) -> edit_ops.KeyedHook | None:
        info = self.generator.layers[k]
        channels = edit_ops.check_channels(edit.channels, info.channels, info.name, what)
        placed = self._placed(scene, ws, edit, info, what)
        if placed is None:
            return None
        return edit_ops.feature_hook(channels, info.channels, edit.amount, placed[1], self.device)

    def _copy_hook(self, scene: Scene, ws: Tensor, edit: FeatureCopy, k: int,
                   what: str) -> edit_ops.KeyedHook | None:
        info = self.generator.layers[k]
        placed = self._placed(scene, ws, edit, info, what)
        if placed is None:
            return None
        mask, raster = placed
        sources = edit_ops.copy_sources(edit, mask, info.height, info.width, info.margin)
        return edit_ops.copy_hook(sources, raster, edit.amount, self.device)

    def _placed(self, scene: Scene, ws: Tensor, edit: FeatureEdit | FeatureCopy, info: LayerInfo,
                what: str) -> tuple[Mask, np.ndarray] | None:
        """The edit's mask where its anchor puts it on this latent, and its raster at the layer;
        None when the edit changes nothing (amount 0, or no mask on the map)."""
        anchor_layer = None if edit.anchor is None else self._anchor_layer(edit.anchor, what)
        if edit.amount == 0 or edit.mask.is_empty():
            return None
        mask = edit.mask
        if edit.anchor is not None:
            mask = self._anchored(scene, ws, mask, edit.anchor, anchor_layer)
        raster = self._raster(mask, info)
        return (mask, raster) if raster.any() else None

    def _resample_hook(self, scene: Scene, edit: RegionResample, k: int) -> edit_ops.KeyedHook | None:
        info = self.generator.layers[k]
        raster = self._raster(edit.mask, info)
        if not raster.any():
            return None
        other_ws = self._other_ws(scene, edit.seed)
        other = self._synthesize(other_ws, {}, scene, {k}, stop=k + 1).taps[k]
        other_key = self._prefix_keys(other_ws, {}, scene, k + 1)[k + 1]
        return edit_ops.resample_hook(other, raster, other_key, self.device)

    def _raster(self, mask: Mask, info: LayerInfo) -> np.ndarray:
        """``rasterize_layer``, remembered: unchanged edits are not redrawn on every render."""
        key = (mask, info.height, info.width, info.margin)
        if key not in self._rasters:
            self._rasters[key] = rasterize_layer(mask, info.height, info.width, info.margin)
            while len(self._rasters) > 256:
                self._rasters.popitem(last=False)
        self._rasters.move_to_end(key)
        return self._rasters[key]

    def _anchor_layer(self, anchor: Anchor, what: str) -> int:
        k = edit_ops.check_layer(self.generator, anchor.layer, f"{what} anchor")
        info = self.generator.layers[k]
        edit_ops.check_channels(anchor.channels, info.channels, info.name, f"{what} anchor")
        return k

    def _anchored(self, scene: Scene, ws: Tensor, mask: Mask, anchor: Anchor, k: int) -> Mask:
        """The mask moved to where the anchor channels peak on this latent (before feature edits)."""
        activation = self._synthesize(ws, {}, scene, {k}, stop=k + 1).taps[k][0]
        channels = sorted(set(anchor.channels))
        info = self.generator.layers[k]
        m = image_margin(info.margin, info.height, info.width)
        image_part = activation[channels, m:info.height - m, m:info.width - m]
        return edit_ops.anchored_mask(mask, anchor, image_part.float().cpu().numpy())

    # ---- cached synthesis -----------------------------------------------------------------------
    def _prefix_keys(self, ws: Tensor, hooks: dict[int, edit_ops.KeyedHook], scene: Scene,
                     stop: int) -> list[str]:
        """keys[k] digests everything the state before layer k depends on (k = 0 .. stop)."""
        noise = (scene.noise_mode, scene.noise_seed if scene.noise_mode == "random" else None)
        rows = ws.detach().cpu().numpy()
        keys = [edit_ops.digest(self._identity, noise)]
        for k in range(stop):
            info = self.generator.layers[k]
            hook = hooks.get(k)
            keys.append(edit_ops.digest(keys[-1], rows[list(info.w_indices)],
                                        None if hook is None else hook.key))
        return keys

    def _resume_point(self, keys: list[str], taps: set[int], stop: int, needs_image: bool) -> int:
        """The latest layer k to restart at: its input state (or, at ``stop``, the image) is cached,
        and so are the taps of every requested layer before it."""
        for k in range(stop, 0, -1):
            if k == stop:
                ready = self._cache.has("image", keys[stop]) if needs_image else True
            else:
                ready = self._cache.has("state", keys[k])
            if ready and all(self._cache.has("tap", keys[j + 1]) for j in taps if j < k):
                return k
        return 0

    def _synthesize(self, ws: Tensor, hooks: dict[int, edit_ops.KeyedHook], scene: Scene,
                    taps: set[int], stop: int) -> _Pass:
        g = self.generator
        n_layers = len(g.layers)
        keys = self._prefix_keys(ws, hooks, scene, stop)
        needs_image = stop == n_layers
        start = self._resume_point(keys, taps, stop, needs_image)
        image = None
        # taken before running: storing this pass's results may evict older entries
        tapped = {k: self._cache.get("tap", keys[k + 1]) for k in taps if k < start}
        if start < stop:
            state = self._cache.get("state", keys[start]) if start > 0 else None
            keep = [k for k in range(start + 1, stop + 1) if k < n_layers]
            out = g.synthesize(ws[None], start=start, state=state, stop=stop,
                               taps=[g.layers[k].name for k in range(start, stop)],
                               hooks={g.layers[k].name: h.apply for k, h in hooks.items() if k >= start},
                               keep_states=keep, noise_mode=scene.noise_mode,
                               noise_seed=scene.noise_seed)
            for k in keep:
                self._cache.put("state", keys[k], out.states[k])
            tapped.update({k: out.taps[g.layers[k].name] for k in taps if k >= start})
            for k in range(start, stop):
                self._cache.put("tap", keys[k + 1], out.taps[g.layers[k].name])
            if needs_image:
                image = out.image
                self._cache.put("image", keys[stop], image)
        elif needs_image:
            image = self._cache.get("image", keys[stop])
        return _Pass(image=image, taps=tapped, first_layer=start)
