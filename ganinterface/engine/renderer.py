"""Rendering Scenes, with a per-layer cache so a change re-runs only the layers it affects.

The state before layer k depends on: the generator, the noise (mode, and seed when random), the ws
rows read by layers 0..k-1, and the hooks on and style offsets of layers 0..k-1.  ``prefix_keys`` digests exactly that,
layer by layer; a cached state whose key matches is reused, so moving a direction that only touches
rows >= r, or editing features at layer L, restarts synthesis at the first layer that sees the change
(``RenderResult.first_layer``).  Taps (activations shown in the window) are cached the same way.
A layer's output is also cached as it was before its hook, so changing an edit at layer L (a drag)
applies the new hook to it and runs the layers after L only.

``render(scene, draft=True)`` is the fast mode: synthesis in the reduced precision the device runs
fast (``engine.device.fast_dtype``: float16 on GPUs, bfloat16 on CPUs with AVX-512 BF16; for a small
model on the CPU, float32 on one thread fewer), for the window to show while a drag goes on.  A
draft goes on from the latest exact state cached (the exact render before the drag), so only the
layers after the change are drafted: the draft is closer to the exact picture, and nothing before
the change is recomputed.  Its later states are cached under keys
that say from which exact state they went on; what a draft adds never stands in for an exact render.

``render`` never raises for a bad scene: problems come back as ``RenderResult.error``.  When the
device runs out of memory, the renderer drops its caches and tries once more; what it cannot get
past is ``RenderResult.trouble`` (``engine.device``), for the window to move to the CPU.
"""

from __future__ import annotations

import contextlib
import dataclasses
import logging
import threading
import time
from collections import OrderedDict
from collections.abc import Iterator, Sequence

import numpy as np
import torch

from ganinterface.engine import kinds
from ganinterface.engine.analysis import follow_anchor
from ganinterface.engine.device import (OUT_OF_MEMORY, device_trouble, fast_dtype,
                                        free_device_memory, pick_device)
from ganinterface.engine.kinds.base import KeyedHook, Placement, digest
from ganinterface.engine.latents import class_vector, z_from_seed
from ganinterface.engine.keep_rest import kept_rest, rest_weights
from ganinterface.engine.layer_cache import LayerCache
from ganinterface.engine.masks import rasterize_layer
from ganinterface.engine.pixels import host_arrays, host_float32, to_uint8_image, uint8_pixels
from ganinterface.engine.scene import Anchor, Mask, Scene
from ganinterface.models.base import NOISE_MODES, GeneratorBase, LayerInfo, LayerState, with_detail

Tensor = torch.Tensor
log = logging.getLogger(__name__)

DEFAULT_CACHE_BYTES = 1 << 30
# Smaller images render no faster in bfloat16 (the built-in 128 x 64 model: 1.06x, per-layer overhead
# dominates) yet differ by up to 0.05, so drafts there would only be worse; at 256 px: 1.86x.
DRAFT_MIN_PIXELS = 256 * 256


@dataclasses.dataclass(frozen=True)
class _Precision:
    """How a pass computes: in ``dtype``, and with ``threads`` set, on that many CPU threads (a
    draft of a small model leaves a core to the window; its sums fall in another order, so it may
    differ from the exact render in the last bits)."""

    dtype: torch.dtype = torch.float32
    threads: int | None = None

    @property
    def exact(self) -> bool:
        return self.dtype == torch.float32 and self.threads is None


_EXACT = _Precision()


@contextlib.contextmanager
def _cpu_threads(count: int | None) -> Iterator[None]:
    """This thread's torch ops on ``count`` threads meanwhile (None: as they are)."""
    if count is None:
        yield
        return
    before = torch.get_num_threads()
    torch.set_num_threads(count)
    try:
        yield
    finally:
        torch.set_num_threads(before)


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
    trouble: str | None = None  # the device's: engine.device.OUT_OF_MEMORY or DEVICE_FAILED
    draft: bool = False  # a draft: the fast mode's reduced precision, or a core left to the window

    @property
    def ok(self) -> bool:
        return self.error is None


@dataclasses.dataclass
class _Pass:
    """What one synthesis pass produced, and where it started."""

    image: Tensor | None
    taps: dict[int, Tensor]
    first_layer: int
    draft: bool  # some layer of the image came from the reduced precision


class Renderer:
    """Renders Scenes with one generator on one device (the generator is moved there).

    ``fast``: whether drafts use a reduced precision.  None (default): where the device runs one
    faster and the images are large enough for it to pay (``DRAFT_MIN_PIXELS``); True: also where
    it does not (the model's first ``fast_dtypes``); False: never.  ``fast_dtype`` tells which is
    used, None when drafts are in float32.  By default a draft of a smaller model on the CPU runs on
    one thread fewer than the exact render: during a drag the window's own thread needs a core to
    show each frame, and an OpenMP team that waits on a thread it shares a core with renders slower
    (the built-in model on 2 cores: 30-33 -> 42-45 frames shown a second, ``benchmarks/bench_ui.py``)."""

    def __init__(self, generator: GeneratorBase, device: torch.device | str | None = None,
                 cache_bytes: int = DEFAULT_CACHE_BYTES, fast: bool | None = None):
        self.device = device if isinstance(device, torch.device) else pick_device(device)
        self.generator = generator.to(self.device).eval()
        large = generator.img_height * generator.img_width >= DRAFT_MIN_PIXELS
        wanted = fast if fast is not None else large
        self.fast_dtype = fast_dtype(self.device, generator.fast_dtypes) if wanted else None
        if fast and self.fast_dtype is None:
            self.fast_dtype = next(iter(generator.fast_dtypes), None)
        self._drafts_leave_a_core = fast is None and self.device.type == "cpu" and not large
        self._cache = LayerCache(cache_bytes)
        self._mapped: OrderedDict[tuple, Tensor] = OrderedDict()
        self._lock = threading.Lock()  # one render at a time
        self._mapping_lock = threading.Lock()  # base_ws may be called from another thread
        self._stored_noise: dict[str, np.ndarray] | None = None
        self._identity = f"{type(generator).__name__}@{id(generator)}"
        self._rasters: OrderedDict[tuple[Mask, int, int], np.ndarray] = OrderedDict()
        self._hooks: OrderedDict[str, KeyedHook] = OrderedDict()
        self._weights: OrderedDict[tuple, Tensor] = OrderedDict()  # of edits keeping the rest
        # other seeds' features for RegionResample, kept apart from the layer cache: at 1024 px one
        # render's states fill its budget and would evict them on every step of a drag
        self._others: OrderedDict[str, Tensor] = OrderedDict()

    # ---- public -------------------------------------------------------------------------------
    def render(self, scene: Scene, taps: Sequence[str] = (), draft: bool = False) -> RenderResult:
        """The scene's image (and ``taps``' features); a ``draft`` in the fast mode's precision if
        this renderer has one (``RenderResult.draft`` says which was made)."""
        started = time.perf_counter()
        precision = self._draft_precision() if draft else _EXACT
        with self._lock, torch.no_grad(), _cpu_threads(precision.threads):
            result = self._attempt(scene, tuple(taps), precision, started)
            if result.trouble == OUT_OF_MEMORY:
                self._forget()
                free_device_memory(self.device)
                result = self._attempt(scene, tuple(taps), precision, started)
        return result

    def _draft_precision(self) -> _Precision:
        if self.fast_dtype is not None:
            return _Precision(self.fast_dtype)
        threads = torch.get_num_threads()
        return _Precision(threads=threads - 1) if self._drafts_leave_a_core and threads > 1 else _EXACT

    def render_batch(self, scenes: Sequence[Scene], taps: Sequence[str] = ()) -> list[RenderResult]:
        """Several scenes in one synthesis pass, for batch jobs; raises RenderError for a scene that
        cannot be rendered.

        The layer cache is neither read nor filled.  On the CPU each result is the bytes of
        ``render``'s on the same thread count (``models.base``, *Batches*); on a GPU an image can
        differ from it by rounding (the same scenes in the same batch size give the same bytes).
        Every scene must share one noise mode other than "random" (random noise is drawn for the
        batch, not per scene), and none may carry noise or detail maps.
        """
        modes = {scene.noise_mode for scene in scenes}
        if len(modes) != 1 or "random" in modes or not modes <= set(NOISE_MODES):
            raise RenderError(f"a batch needs one noise mode, const or none; got {sorted(modes)}")
        if any(scene.noise_maps or scene.detail_maps for scene in scenes):
            raise RenderError("scenes with their own noise or detail maps (projected pictures) render "
                              "one at a time")
        started = time.perf_counter()
        g = self.generator
        with self._lock, torch.no_grad():
            tap_indices = {self._layer_index(name, "tap"): name for name in taps}
            ws_rows, hook_sets, offset_sets = [], [], []
            rests: dict[int, tuple[int, Tensor]] = {}  # scene -> its rest's row, the weights

            def add_row(scene: Scene) -> _SceneContext:
                context = _SceneContext(self, scene, _EXACT)
                context.ws = kinds.edited_ws(self._base_ws(scene), scene.edits, context)
                ws_rows.append(context.ws)
                hook_sets.append(kinds.layer_hooks(scene.edits, context))
                offset_sets.append(kinds.style_offsets(scene.edits, context))
                return context

            contexts = [add_row(scene) for scene in scenes]
            for i, scene in enumerate(scenes):
                if any(kinds.keeps_rest(edit) for edit in scene.edits):  # its rest: in this pass too
                    rests[i] = (len(ws_rows), self._rest_weights(contexts[i], scene.edits))
                    add_row(dataclasses.replace(scene, edits=kinds.without_rest_kept(scene.edits)))
            hooked = set().union(*hook_sets)
            out = g.synthesize(torch.stack(ws_rows).to(self.device), taps=[g.layers[k].name for k in tap_indices],
                               hooks={g.layers[k].name: _per_sample(hook_sets, k) for k in hooked},
                               noise_mode=modes.pop(),
                               style_offsets=self._per_sample_offsets(offset_sets))
            seconds = (time.perf_counter() - started) / len(scenes)
            results = []
            for i, ws in enumerate(ws_rows[:len(scenes)]):
                raw = out.image[i].to(torch.float32)
                if i in rests:
                    row, weights = rests[i]
                    raw = kept_rest(out.image[row].to(torch.float32), raw, weights)
                features = {name: host_float32(out.taps[g.layers[k].name][i])
                            for k, name in tap_indices.items()}
                results.append(RenderResult(image=to_uint8_image(raw), raw=host_float32(raw),
                                            features=features, ws=host_float32(ws), first_layer=0,
                                            seconds=seconds))
        return results

    def base_ws(self, scene: Scene) -> np.ndarray:
        """(num_ws, w_dim) float32 before edits: the seed mapped (class, truncation) or scene.w."""
        with torch.no_grad():
            return host_float32(self._base_ws(scene))

    def stored_noise_maps(self) -> dict[str, np.ndarray]:
        """Layer name -> the (h, w) noise map mode "const" adds (what a scene without noise maps
        renders with), float32 on the host."""
        if self._stored_noise is None:
            self._stored_noise = {name: host_float32(value)
                                  for name, value in self.generator.stored_noise().items()}
        return self._stored_noise

    def layer_features(self, scenes: Sequence[Scene], layer: str) -> np.ndarray:
        """(N, C, h, w) activations of ``layer`` for several scenes (e.g. seeds to rank channels on)."""
        out = []
        for scene in scenes:
            result = self.render(scene, [layer])
            if result.error is not None:
                raise RenderError(f"seed {scene.seed}: {result.error}")
            out.append(result.features[layer])
        return np.stack(out)

    @property
    def cache_bytes(self) -> int:
        """Bytes of tensors the layer cache holds (at most its budget, ``cache_bytes`` given)."""
        return self._cache.bytes

    def clear_cache(self) -> None:
        with self._lock:
            self._forget()

    def on_cpu(self) -> Renderer:
        """This generator in a new renderer on the CPU, after trouble with this one's device (whose
        cache is dropped; the generator moves, so this renderer must not be used again)."""
        with self._lock:
            self._forget()
            return Renderer(self.generator, "cpu", self._cache.max_bytes,
                            fast=None if self.fast_dtype is not None else False)

    def _forget(self) -> None:
        with self._mapping_lock:
            self._cache.clear()
            self._mapped.clear()
            self._rasters.clear()
            self._hooks.clear()
            self._others.clear()

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
            return torch.from_numpy(np.array(w, dtype=np.float32))
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
                # kept on the CPU, where edits of ws and the cache keys read it without waiting
                # for the device; synthesis gets a copy
                self._mapped[key] = g.mapping(z, c, truncation_psi=psi,
                                              truncation_cutoff=cutoff)[0].cpu()
                while len(self._mapped) > 64:
                    self._mapped.popitem(last=False)
            self._mapped.move_to_end(key)
            return self._mapped[key]

    # ---- the render -----------------------------------------------------------------------------
    def _attempt(self, scene: Scene, taps: tuple[str, ...], precision: _Precision,
                 started: float) -> RenderResult:
        trouble = None
        try:
            return self._render(scene, taps, precision, started)
        except (RenderError, ValueError) as error:
            message = str(error)
        except Exception as error:  # a bug or a model failure must not kill the render thread
            trouble = device_trouble(error)
            if trouble is None:
                log.exception("render failed")
            else:
                log.warning("render on %s: %s (%s)", self.device, trouble, error)
            # one line: CUDA's messages go on with advice on debugging
            message = f"{type(error).__name__}: {error}".partition("\n")[0]
        return RenderResult(None, None, {}, None, 0, time.perf_counter() - started, message,
                            trouble)

    def _render(self, scene: Scene, taps: tuple[str, ...], precision: _Precision,
                started: float) -> RenderResult:
        if scene.noise_mode not in NOISE_MODES:
            raise RenderError(f"noise mode must be one of {', '.join(NOISE_MODES)}, "
                              f"got {scene.noise_mode!r}")
        tap_indices = {self._layer_index(name, "tap"): name for name in taps}
        self._check_detail(scene)
        context, ws, result = self._edited_pass(scene, set(tap_indices), precision)
        raw = result.image[0].to(torch.float32)
        draft = result.draft
        if any(kinds.keeps_rest(edit) for edit in scene.edits):
            rest_scene = dataclasses.replace(scene, edits=kinds.without_rest_kept(scene.edits))
            _, _, rest = self._edited_pass(rest_scene, set(), precision)
            weights = self._rest_weights(context, scene.edits)
            raw = kept_rest(rest.image[0].to(torch.float32), raw, weights)
            draft = draft or rest.draft
        # copies: on the CPU .numpy() shares memory with tensors the cache still holds
        image, raw_array, *tapped = host_arrays(
            [uint8_pixels(raw), raw] + [result.taps[k][0].float() for k in tap_indices], self.device)
        features = dict(zip(tap_indices.values(), tapped))
        return RenderResult(image=image, raw=raw_array, features=features,
                            ws=host_float32(ws), first_layer=result.first_layer,
                            seconds=time.perf_counter() - started, draft=draft)

    def _edited_pass(self, scene: Scene, taps: set[int], precision: _Precision,
                     ) -> tuple[_SceneContext, Tensor, _Pass]:
        """The scene's edits applied and its image synthesized (through the layer cache)."""
        context = _SceneContext(self, scene, precision)
        ws = context.ws = kinds.edited_ws(self._base_ws(scene), scene.edits, context)
        hooks = {k: self._known(hook) for k, hook in kinds.layer_hooks(scene.edits, context).items()}
        offsets = kinds.style_offsets(scene.edits, context)
        return context, ws, self._synthesize(ws, hooks, offsets, scene, taps,
                                             len(self.generator.layers), precision)

    def _rest_weights(self, context: _SceneContext, edits: Sequence[kinds.Edit]) -> Tensor:
        """(1, H, W) float32 on the device: ``keep_rest.rest_weights`` of the edits that keep the
        rest, their masks placed as the render placed them (remembered: a drag of their strength
        places them the same way on every frame)."""
        g = self.generator
        key = (kinds.rest_masks(edits, context)[0], g.img_height, g.img_width)
        if key not in self._weights:
            self._weights[key] = torch.from_numpy(rest_weights(*key))[None].to(self.device)
            while len(self._weights) > 16:
                self._weights.popitem(last=False)
        self._weights.move_to_end(key)
        return self._weights[key]

    def _check_detail(self, scene: Scene) -> None:
        for name, value in (scene.detail_maps or {}).items():
            info = self.generator.layers[self._layer_index(name, "detail map")]
            if value.shape != (info.channels, info.height, info.width):
                raise RenderError(f"the detail map of layer {name} has shape {value.shape}; this "
                                  f"model's layer holds ({info.channels}, {info.height}, {info.width})")

    def _layer_index(self, name: str, what: str) -> int:
        try:
            return self.generator.layer_index(name)
        except KeyError as error:
            raise RenderError(f"{what}: {error.args[0]}") from None

    def _raster(self, mask: Mask, info: LayerInfo) -> np.ndarray:
        """``rasterize_layer``, remembered: unchanged edits are not redrawn on every render."""
        key = (mask, info.height, info.width, info.margin)
        if key not in self._rasters:
            self._rasters[key] = rasterize_layer(mask, info.height, info.width, info.margin)
            while len(self._rasters) > 256:
                self._rasters.popitem(last=False)
        self._rasters.move_to_end(key)
        return self._rasters[key]

    def _known(self, hook: KeyedHook) -> KeyedHook:
        """An earlier hook with the same key (the same effect), if kept: it has built what it adds
        already.  So an edit's tensors are made once, not on every render."""
        known = self._hooks.setdefault(hook.key, hook)
        self._hooks.move_to_end(hook.key)
        while len(self._hooks) > 64:
            self._hooks.popitem(last=False)
        return known

    # ---- cached synthesis -----------------------------------------------------------------------
    def _prefix_keys(self, ws: Tensor, hooks: dict[int, KeyedHook], offsets: dict[str, np.ndarray],
                     scene: Scene, stop: int, precision: _Precision,
                     taps: set[int] = frozenset()) -> _Keys:
        """The cache keys of a pass up to ``stop`` (see ``_Keys``).  In a draft's ``precision`` the
        exact keys are kept up to the latest exact state cached (the exact render's, where a draft
        goes on from) and the later ones say so: ``precision`` from that state on."""
        noise = (scene.noise_mode, scene.noise_seed if scene.noise_mode == "random" else None)
        maps = sorted((scene.noise_maps or {}).items()) if scene.noise_mode == "const" else []
        detail = sorted((scene.detail_maps or {}).items())
        rows = ws.detach().cpu().numpy()
        keys = _Keys([digest(self._identity, noise, *(part for pair in maps for part in pair),
                             "detail", *(part for pair in detail for part in pair))], {}, stop)
        self._extend(keys, 0, stop, rows, hooks, offsets)
        if precision.exact:
            return keys
        exact, _ = self._resume_point(keys, taps, stop, stop == len(self.generator.layers))
        reduced = _Keys(keys.states[:exact + 1], {k: key for k, key in keys.unhooked.items() if k <= exact},
                        exact)
        self._extend(reduced, exact, stop, rows, hooks, offsets, precision)
        return reduced

    def _extend(self, keys: _Keys, begin: int, stop: int, rows: np.ndarray, hooks: dict[int, KeyedHook],
                offsets: dict[str, np.ndarray], precision: _Precision | None = None) -> None:
        """Adds the keys of layers ``begin .. stop - 1``; a draft's ``precision`` marks them as
        computed in it."""
        layers = self.generator.layers
        for k in range(begin, stop):
            before = (digest(keys.states[k], precision.dtype, precision.threads)
                      if precision is not None and k == begin else keys.states[k])
            row, hook, offset = rows[list(layers[k].w_indices)], hooks.get(k), offsets.get(layers[k].name)
            keys.states.append(digest(before, row, None if hook is None else hook.key, offset))
            if hook is not None and self._hands_on_output(k):
                keys.unhooked[k + 1] = digest(before, row, None, offset)

    def _per_sample_offsets(self, offset_sets: list[dict[str, np.ndarray]]) -> dict[str, Tensor]:
        """One batch's style offsets: (N, styles) per layer, zero for the scenes that leave it."""
        sizes = self.generator.style_sizes()
        batched = {}
        for layer in set().union(*offset_sets):
            rows = np.zeros((len(offset_sets), sizes[layer]), np.float32)
            for i, offsets in enumerate(offset_sets):
                if layer in offsets:
                    rows[i] = offsets[layer]
            batched[layer] = torch.from_numpy(rows).to(self.device)
        return batched

    def _noise_maps(self, scene: Scene) -> dict[str, Tensor] | None:
        if not scene.noise_maps:
            return None
        return {name: torch.from_numpy(np.array(value)).to(self.device)
                for name, value in scene.noise_maps.items()}

    def _detail_maps(self, scene: Scene, start: int) -> dict[str, Tensor]:
        """The scene's detail maps of the layers from ``start`` on (earlier ones are in the state)."""
        return {name: torch.from_numpy(np.array(value)).to(self.device)
                for name, value in (scene.detail_maps or {}).items()
                if self.generator.layer_index(name) >= start}

    def _resume_point(self, keys: _Keys, taps: set[int], stop: int, needs_image: bool) -> tuple[int, bool]:
        """The latest layer k to restart at: its input state (or, at ``stop``, the image) is cached,
        and so are the taps of every requested layer before it.  True with it: that state is to be
        made from the output of layer k - 1 cached without the hook, the hook applied to it."""
        def taps_ready(k: int) -> bool:
            return all(self._has_tap(keys, j) for j in taps if j < k)

        for k in range(stop, 0, -1):
            if k == stop and needs_image:
                if self._cache.has("image", keys.states[stop]) and taps_ready(k):
                    return k, False
                continue
            if (k == stop or self._cache.has("state", keys.states[k])) and taps_ready(k):
                return k, False
            if k in keys.unhooked and self._cache.has("state", keys.unhooked[k]) and taps_ready(k - 1):
                return k, True
        return 0, False

    def _synthesize(self, ws: Tensor, hooks: dict[int, KeyedHook], offsets: dict[str, np.ndarray],
                    scene: Scene, taps: set[int], stop: int, precision: _Precision) -> _Pass:
        g = self.generator
        n_layers = len(g.layers)
        keys = self._prefix_keys(ws, hooks, offsets, scene, stop, precision, taps)
        needs_image = stop == n_layers
        start, rehook = self._resume_point(keys, taps, stop, needs_image)
        image = None
        # taken before running: storing this pass's results may evict older entries
        tapped = {k: self._cached_tap(keys, k) for k in taps if k < start - rehook}
        state = self._rehooked(keys, start, hooks[start - 1]) if rehook else None
        if rehook and start - 1 in taps:
            tapped[start - 1] = state["x"]
        if start < stop:
            if start > 0 and not rehook:
                state = self._cache.get("state", keys.states[start])
            keep = [k for k in range(start + 1, stop + 1) if k < n_layers]
            unhooked: dict[int, Tensor] = {}
            out = g.synthesize(ws.to(self.device)[None], start=start, state=state, stop=stop,
                               taps=[g.layers[k].name for k in range(start, stop)],
                               hooks=with_detail({g.layers[k].name: _recording(h, k, keys, unhooked)
                                                  for k, h in hooks.items() if k >= start},
                                                 self._detail_maps(scene, start)),
                               keep_states=keep, noise_mode=scene.noise_mode,
                               noise_seed=scene.noise_seed, noise_maps=self._noise_maps(scene),
                               compute_dtype=precision.dtype,
                               style_offsets={name: torch.from_numpy(offset).to(self.device)
                                              for name, offset in offsets.items()
                                              if g.layer_index(name) >= start})
            for k in keep:
                self._cache.put("state", keys.states[k], out.states[k])
            for k, x in unhooked.items():
                self._cache.put("state", keys.unhooked[k + 1], {**out.states[k + 1], "x": x})
            tapped.update({k: out.taps[g.layers[k].name] for k in taps if k >= start})
            for k in range(start, stop):
                if not self._hands_on_output(k):
                    self._cache.put("tap", keys.states[k + 1], out.taps[g.layers[k].name])
            if needs_image:
                image = out.image
                self._cache.put("image", keys.states[stop], image)
        elif needs_image:
            image = self._cache.get("image", keys.states[stop])
        return _Pass(image=image, taps=tapped, first_layer=start, draft=keys.exact < stop)

    def _rehooked(self, keys: _Keys, k: int, hook: KeyedHook) -> LayerState:
        """The state before layer k made from the cached output of layer k - 1 without its hook:
        the hook applied to a copy (cached)."""
        unhooked = self._cache.get("state", keys.unhooked[k])
        state = {**unhooked, "x": hook.apply(unhooked["x"].clone())}
        self._cache.put("state", keys.states[k], state)
        return state

    def _hands_on_output(self, k: int) -> bool:
        """Whether layer k's (hooked) output is the "x" of the state after it (``models.base``):
        then that state is its tap too, not cached twice."""
        layers = self.generator.layers
        return layers[k].kind != "torgb" and k + 1 < len(layers)

    def _has_tap(self, keys: _Keys, k: int) -> bool:
        return self._cache.has("state" if self._hands_on_output(k) else "tap", keys.states[k + 1])

    def _cached_tap(self, keys: _Keys, k: int) -> Tensor:
        if self._hands_on_output(k):
            return self._cache.get("state", keys.states[k + 1])["x"]
        return self._cache.get("tap", keys.states[k + 1])


@dataclasses.dataclass
class _Keys:
    """The cache keys of one pass.  ``states[k]`` digests everything the state before layer k
    depends on (k = 0 .. stop): the generator, the noise, the ws rows and the hooks of the layers
    before.  ``unhooked[k]``: the same state without the hook of layer k - 1, for hooked layers
    that keep their output as the state's "x" (``models.base``): a changed hook is applied to
    that cached output instead of running the layer again.  ``exact``: the keys up to this index
    are of float32 states, the later ones of a draft's."""

    states: list[str]
    unhooked: dict[int, str]
    exact: int


def _recording(hook: KeyedHook, k: int, keys: _Keys, unhooked: dict[int, Tensor]):
    """``hook.apply``, keeping a copy of the output it changes where ``keys`` want it cached."""
    if k + 1 not in keys.unhooked:
        return hook.apply

    def apply(x: Tensor) -> Tensor:
        unhooked[k] = x.clone()
        return hook.apply(x)

    return apply


def _per_sample(hook_sets: list[dict[int, KeyedHook]], layer: int):
    """One batch's hook at ``layer``: each sample changed by its own scene's hook (if it has one)."""
    def apply(x: Tensor) -> Tensor:  # in place, as every hook: x is the layer's fresh output
        for i, hooks in enumerate(hook_sets):
            if layer in hooks:
                hooks[layer].change(x[i:i + 1])
        return x
    return apply


class _SceneContext:
    """What the edit kinds ask of the renderer while they apply one scene's edits (one sample)."""

    def __init__(self, renderer: Renderer, scene: Scene, precision: _Precision):
        self.generator, self.device = renderer.generator, renderer.device
        self._precision = precision  # of the render: anchors and other seeds' features are read in it
        self.ws: Tensor | None = None  # after the scene's edits of ws: what anchors read features of
        self._renderer, self._scene = renderer, scene
        self._placements: dict[tuple[Mask, Anchor | None, int], Placement] = {}

    def other_ws(self, seed: int) -> Tensor:
        """Another seed's ws with the scene's class and truncation."""
        scene = self._scene
        return self._renderer._mapped_ws(seed, scene.class_index, scene.truncation_psi,
                                         scene.truncation_cutoff)

    def placement(self, mask: Mask, anchor: Anchor | None, layer: int) -> Placement:
        """Remembered for the render: a recipe's edits on one layer share their mask and anchor."""
        key = (mask, anchor, layer)
        if key not in self._placements:
            if anchor is not None:
                mask = self._follow(mask, anchor)
            raster = self._renderer._raster(mask, self.generator.layers[layer])
            self._placements[key] = Placement((mask,), raster[None])
        return self._placements[key]

    def _follow(self, mask: Mask, anchor: Anchor) -> Mask:
        """The mask moved to where the anchor channels peak on this latent (before feature edits)."""
        k = self.generator.layer_index(anchor.layer)
        activation = self._renderer._synthesize(self.ws, {}, {}, self._scene, {k}, k + 1,
                                                self._precision).taps[k][0]
        return follow_anchor(mask, anchor, activation.float().cpu().numpy(), self.generator.layers[k])

    def features_of(self, other_ws: Tensor, layer: int) -> tuple[Tensor, str]:
        renderer = self._renderer
        keys = renderer._prefix_keys(other_ws, {}, {}, self._scene, layer + 1, self._precision, {layer})
        key = keys.states[layer + 1]
        others = renderer._others
        if key not in others:
            others[key] = renderer._synthesize(other_ws, {}, {}, self._scene, {layer}, layer + 1,
                                               self._precision).taps[layer]
            while len(others) > 2:
                others.popitem(last=False)
        others.move_to_end(key)
        return others[key], key
