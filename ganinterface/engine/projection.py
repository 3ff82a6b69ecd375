"""Projection: the latent whose render matches a picture, found by gradient descent.

The search follows NVlabs' projector (stylegan2-ada-pytorch ``projector.py``) in its schedule:
Adam from ``w_avg`` (or from an encoder's guess, ``start_w``), a learning rate that ramps up over
the first 5% of steps and down along a cosine over the last 25%, and Gaussian jitter on w that
fades out by 75% of the steps so the search does not settle in the first valley it meets.  After
the W phase (one vector for every layer, the latent that stays editable), space "w+" refines one
row per layer at its own rate, optionally held near W's distribution (``WPrior``).  With
``optimise_noise`` the per-layer noise maps are optimised too, held to white noise by NVlabs'
regulariser (the squared autocorrelation at a one-pixel shift, at every scale of a pyramid) and
renormalised to zero mean and unit variance after each step.  With ``detail`` the last phase also
fits a map added to one layer's output (``detail_layer``: the last convolution at most 1/8 of the image
height, before the layers edits paint into), held small by a squared penalty: the fine detail the
latent cannot draw, which an edit's later layers still act on.

The distance to the picture is ``engine.picture_distance``'s.
"""

from __future__ import annotations

import contextlib
import dataclasses
import math
import time
import weakref
from collections.abc import Callable, Iterator, Sequence
from typing import Protocol

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image

from ganinterface.engine.device import fast_dtype
from ganinterface.engine.picture_distance import PIXEL_SCALES, PerceptualDistance, pixel_distance
from ganinterface.models.base import GeneratorBase, SynthesisOutput, with_detail

Tensor = torch.Tensor
SPACES = ("w", "w+")
# NVlabs' schedule, as fractions of the steps of a phase.
LR_RAMP_UP = 0.05
LR_RAMP_DOWN = 0.25
JITTER_FADE = 0.75
CANDIDATE_BATCH = 32
FEATURE_LEVEL_SAMPLES = 8  # samples whose feature loudness a projection is held at
MAX_DETAIL_VALUES = 1 << 19  # float32 values of a detail map (2 MB): ``detail_layer``
SPREAD_SAMPLES = 2000  # z samples that measure the spread of W around w_avg (NVlabs uses 10000)


class ProjectionError(ValueError):
    """The settings or the picture cannot be projected; one line says why."""


class CancelFlag(Protocol):
    """Anything with a ``cancelled`` flag another thread may set (``export.progress.CancelToken``)."""

    @property
    def cancelled(self) -> bool: ...


ProgressCallback = Callable[[int, int, Tensor], None]  # (step, steps, current render (1, 3, H, W))


STEPS = 200  # from the nearest sample
# From an encoder's guess, which starts near the answer.  120: on 80 procedural renders never
# reported (shipped encoder, one thread), 60 -> 120 steps took PSNR 22.0 -> 23.5 dB, mouth / band
# agreement 95 / 97.5% -> 97.5 / 97.5%, in 3.2 s a picture since steps run in bfloat16 (3.4 s with
# ``feature_level``).  A peak rate of 0.2 gained 0.2 dB more but read 91% of mouths as in the picture.
STEPS_FROM_A_GUESS = 120


@dataclasses.dataclass(frozen=True)
class ProjectionSettings:
    space: str = "w+"  # "w": one vector for every layer; "w+": then one row per layer (closer)
    steps: int = STEPS  # all phases together
    optimise_noise: bool = False  # also fit the per-layer noise maps (StyleGAN2 only)
    seed: int = 0  # the jitter's random stream: same seed, same result
    learning_rate: float = 0.1  # peak Adam rate of the W phase
    w_plus_share: float = 0.4  # fraction of the steps spent on W+ rows (space "w+")
    # Peak rate of the W+ phase. From the shipped encoder's guess, 40 steps on 8 procedural renders:
    # 0.02 -> 17.9 dB, 0.05 -> 18.1, 0.1 -> 18.7, 0.2 -> 17.9 (docs/projection-report.md).
    w_plus_learning_rate: float = 0.1
    # Weight of the W+ rows' distance from W's distribution (``WPrior``), which holds them where the
    # generator's samples lie. Off: on 40 procedural renders, 0.003 held them at 4.7 (free: 13) for
    # 0.1 dB less and changed no recipe's flip rate (docs/projection-report.md).
    w_plus_prior: float = 0.0
    # Weight of ``FeatureLevels.penalty``: the layers edits paint into held at the loudness of the
    # generator's samples. Free, a projection's are 1.3-1.7 times louder there and the recipes'
    # fixed additions move it less.  At 120 steps on 80 + 40 procedural renders never reported,
    # 0 / 0.003 / 0.005 / 0.01 opened 85.7 / 88.1 / 92.7 / 86.7% and 80 / 90 / 95% of mouths, added
    # 86.8 / 92.1 / 89.2 / 94.4% and 86.4 / 85.7 / 90.5% of bands, PSNR and agreement no worse
    # below 0.01 (0.01: mouths read as in the picture 95% against 98.8%); a generator's own renders
    # came back at 25.3 dB either way.  It costs a sixth more a step (docs/projection-report.md).
    feature_level: float = 0.005
    jitter: float = 0.0  # on w, in units of W's spread; NVlabs' 0.05 held the built-in model's W phase near 14 dB
    noise_regularisation: float = 1e5  # weight of the noise maps' autocorrelation (NVlabs' 1e5)
    class_index: int | None = None  # conditional models: the class whose W is measured
    candidates: int = 64  # without start_w: start from the nearest of this many samples (0: w_avg)
    # The search's passes in bfloat16 where the device runs it faster than float32 (``search_dtype``);
    # the final render and its PSNR stay float32.  On the built-in model (CPU with AVX-512 BF16) a
    # step takes 0.68 of float32's time (benchmarks/bench_projection.py); 120 steps from the
    # encoder's guess ended 0.07 dB (8 renders) and 0.22 dB (4 others) below float32's.
    fast: bool = True
    # Fit a detail map too (``detail_layer``).  Shipped encoder, 120 steps: on the report's 100
    # renders PSNR 23.6 -> 27.6 dB, mouth / band agreement 96 / 99% -> 100 / 100%, the recipes open
    # 88% of mouths (82% without) and add 82% of bands (85%), morph midpoints 70% (58%); on 80
    # others never reported, 27.6 dB, mouths 81% (90%), bands 89% (95%).  The likeness is what
    # users see first, and an edited projection with detail still looks like the picture
    # (docs/projection-report.md).
    detail: bool = True
    # Weight of the detail map's mean square.  On 120 renders never reported: 1 -> 27.7 dB, mouths
    # opened 81%, bands added 90%; 2 -> 27.2 dB, 84%, 93%; 3 -> 26.9 dB, 86%, 91%; 0 (40 renders)
    # 28.7 dB but 58% of mouths.
    detail_weight: float = 1.0

    def __post_init__(self) -> None:
        if self.space not in SPACES:
            raise ProjectionError(f"space must be w or w+, got {self.space!r}")
        if self.steps < 1:
            raise ProjectionError(f"steps must be at least 1, got {self.steps}")
        if not 0.0 <= self.w_plus_share <= 1.0:
            raise ProjectionError(f"w_plus_share must be between 0 and 1, got {self.w_plus_share}")
        if self.w_plus_prior < 0:
            raise ProjectionError(f"w_plus_prior must be at least 0, got {self.w_plus_prior}")
        if self.feature_level < 0:
            raise ProjectionError(f"feature_level must be at least 0, got {self.feature_level}")
        if self.detail_weight < 0:
            raise ProjectionError(f"detail_weight must be at least 0, got {self.detail_weight}")

    def phase_steps(self) -> tuple[int, int]:
        """(steps in W, steps in W+)."""
        if self.space == "w":
            return self.steps, 0
        plus = round(self.steps * self.w_plus_share)
        return self.steps - plus, plus


@dataclasses.dataclass
class Projection:
    """The latent found: ``w`` (1, w_dim) for space "w", (1, num_ws, w_dim) for "w+"."""

    w: Tensor
    noise: dict[str, Tensor] | None  # layer name -> (h, w) map, when noise was optimised
    detail: dict[str, Tensor] | None  # layer name -> (C, h, w) map, when detail was fitted
    psnr: float  # dB, of the final render (clamped to [0, 255]) against the target
    loss: float  # the distance at the last step
    steps: int  # steps run (fewer than asked when cancelled)
    seconds: float
    cancelled: bool = False

    def ws(self, num_ws: int) -> Tensor:
        """(1, num_ws, w_dim), what ``synthesize`` takes."""
        return self.w if self.w.ndim == 3 else self.w[:, None].repeat(1, num_ws, 1)

    def scene_fields(self) -> dict[str, np.ndarray | dict[str, np.ndarray] | None]:
        """The latent as a Scene holds it (``w``, ``noise_maps``, ``detail_maps``), on the host."""
        return {"w": self.w[0].cpu().numpy(), "noise_maps": _host(self.noise),
                "detail_maps": _host(self.detail)}


def _host(maps: dict[str, Tensor] | None) -> dict[str, np.ndarray] | None:
    return None if maps is None else {name: value.cpu().numpy() for name, value in maps.items()}


# ---- pictures -------------------------------------------------------------------------------------

def crop_box(width: int, height: int, generator: GeneratorBase) -> tuple[int, int, int, int]:
    """(left, top, right, bottom): the largest centred box of a ``width`` x ``height`` picture with
    the generator's aspect."""
    if width < 1 or height < 1:
        raise ProjectionError(f"the picture is empty ({width} × {height} px)")
    target_w, target_h = generator.img_width, generator.img_height
    if width * target_h > height * target_w:  # wider than the model: trim the sides
        crop_w = max(1, round(height * target_w / target_h))
        left = (width - crop_w) // 2
        return left, 0, left + crop_w, height
    crop_h = max(1, round(width * target_h / target_w))
    top = (height - crop_h) // 2
    return 0, top, width, top + crop_h


def check_crop(box: tuple[int, int, int, int], width: int, height: int, generator: GeneratorBase) -> None:
    """Raises ``ProjectionError`` unless ``box`` (left, top, right, bottom) lies inside a ``width``
    x ``height`` picture with the generator's aspect, within a pixel; the message gives the box as
    X,Y,W,H."""
    left, top, right, bottom = box
    text = f"the crop {left},{top},{right - left},{bottom - top}"
    if not (0 <= left < right <= width and 0 <= top < bottom <= height):
        raise ProjectionError(f"{text} is not inside the picture ({width} × {height} px)")
    target_w, target_h = generator.img_width, generator.img_height
    crop_w, crop_h = right - left, bottom - top
    # off by at most a pixel along the shorter side of the model's aspect
    if abs(crop_w * target_h - crop_h * target_w) > max(target_w, target_h):
        raise ProjectionError(f"{text} is {crop_w} × {crop_h} px, not the model's aspect "
                              f"({target_w} × {target_h} px): e.g. {crop_w} × "
                              f"{round(crop_w * target_h / target_w)} px")


def crop_to_aspect(image: np.ndarray, generator: GeneratorBase,
                   box: tuple[int, int, int, int] | None = None) -> Tensor:
    """(1, 3, H, W) float32 in [-1, 1] at the generator's resolution: ``box`` of ``image`` (uint8
    (h, w, 3); default the centred ``crop_box``; a given box is checked by ``check_crop``) resized
    with a Lanczos filter."""
    if image.ndim != 3 or image.shape[2] != 3 or image.dtype != np.uint8:
        raise ProjectionError(f"expected an RGB uint8 picture (h, w, 3), got {image.dtype} {image.shape}")
    height, width = image.shape[:2]
    if box is None:
        box = crop_box(width, height, generator)
    else:
        check_crop(box, width, height, generator)
    picture = Image.fromarray(image).crop(box)
    resized = picture.resize((generator.img_width, generator.img_height), Image.Resampling.LANCZOS)
    pixels = torch.from_numpy(np.asarray(resized, dtype=np.float32))
    return (pixels.permute(2, 0, 1)[None] / 127.5 - 1.0).contiguous()


def psnr(render: Tensor, target: Tensor) -> float:
    """dB between two (1, 3, H, W) images, both clamped to [-1, 1] as they are shown, on the
    0-255 scale."""
    error = ((render.clamp(-1, 1) - target.clamp(-1, 1)) * 127.5).square().mean().item()
    return math.inf if error == 0 else 10.0 * math.log10(255.0 ** 2 / error)


# ---- the search -----------------------------------------------------------------------------------

def project(generator: GeneratorBase, target: Tensor, settings: ProjectionSettings = ProjectionSettings(),
            *, start_w: Tensor | None = None, distance: PerceptualDistance | None = None,
            progress: ProgressCallback | None = None, cancel: CancelFlag | None = None) -> Projection:
    """The latent whose render is nearest ``target`` (1, 3, H, W) in [-1, 1], at the generator's
    resolution.  ``start_w`` ((w_dim,), (1, w_dim) or (1, num_ws, w_dim)) replaces ``w_avg`` as the
    starting point.  ``cancel`` stops the search after the current step; what was found so far is
    returned with ``cancelled`` set."""
    started = time.perf_counter()
    device = generator.w_avg.device
    target = _checked_target(generator, target).to(device)
    distance_to_target = (distance or PerceptualDistance()).to(device).against(target)
    random = torch.Generator(device="cpu").manual_seed(settings.seed)
    if start_w is None and settings.candidates:
        start_w = nearest_sample(generator, target, settings)
    w, rows = _starting_point(generator, start_w)
    noise = _starting_noise(generator, device) if settings.optimise_noise else None
    detail = _starting_detail(generator, device) if settings.detail else None
    w_steps, plus_steps = settings.phase_steps()
    if rows is not None and settings.space == "w+":  # an encoder's W+ guess: refine its rows
        w_steps, plus_steps = 0, settings.steps
    levels = feature_levels(generator, settings.class_index) if settings.feature_level else None
    search = _Search(generator, distance_to_target, noise, settings, progress, cancel, levels,
                     search_dtype(generator, device) if settings.fast else torch.float32)
    last_phase = "w+" if settings.space == "w+" and plus_steps else "w"
    with _frozen_weights(generator):
        if w_steps:
            spread = latent_spread(generator, settings.class_index) * settings.jitter if settings.jitter else 0.0
            w = search.run(w, w_steps, settings.learning_rate,
                           lambda latent, t: _jittered(latent, spread, t, random) if spread else latent,
                           detail=detail if last_phase == "w" else None)
        if settings.space == "w+":
            if w_steps or rows is None:
                rows = w[:, None].repeat(1, generator.num_ws, 1)
            w = search.run(rows, plus_steps, settings.w_plus_learning_rate, lambda latent, t: latent,
                           _prior_penalty(generator, settings), detail=detail)
        with torch.no_grad():
            final = _synthesized(generator, w, noise, detail=detail).image
            loss = distance_to_target(final).item()
    return Projection(w=w.detach(), noise={k: v.detach() for k, v in noise.items()} if noise else None,
                      detail={k: v.detach() for k, v in detail.items()} if detail else None,
                      psnr=psnr(final, target), loss=loss, steps=search.done,
                      seconds=time.perf_counter() - started, cancelled=search.cancelled)


class _Search:
    """Runs the phases: Adam on the latent (and the noise maps), NVlabs' rate schedule."""

    def __init__(self, generator: GeneratorBase, distance: Callable[[Tensor], Tensor],
                 noise: dict[str, Tensor] | None, settings: ProjectionSettings,
                 progress: ProgressCallback | None, cancel: CancelFlag | None,
                 levels: FeatureLevels | None = None, dtype: torch.dtype = torch.float32):
        self.generator = generator
        self.dtype = dtype
        self.levels = levels if levels and levels.layers else None
        self.distance = distance
        self.noise = noise
        self.settings = settings
        self.progress = progress
        self.cancel = cancel
        self.total = settings.steps
        self.done = 0
        self.cancelled = False

    def run(self, latent: Tensor, steps: int, peak_rate: float,
            perturb: Callable[[Tensor, float], Tensor],
            penalty: Callable[[Tensor], Tensor] | None = None,
            detail: dict[str, Tensor] | None = None) -> Tensor:
        """``latent`` after ``steps`` steps; ``detail``'s maps (leaves that require grad) are
        fitted along with it, in place."""
        latent = latent.detach().clone().requires_grad_(True)
        noise_maps = list(self.noise.values()) if self.noise else []
        optimiser = _Adam([latent, *noise_maps, *(detail or {}).values()])
        for step in range(steps):
            if self.cancel is not None and self.cancel.cancelled:
                self.cancelled = True
                break
            t = step / steps
            taps = self.levels.layers if self.levels else ()
            rendered = _synthesized(self.generator, perturb(latent, t), self.noise, taps, self.dtype, detail)
            images = rendered.image.float()
            loss = self.distance(images)
            if self.levels:
                loss = loss + self.settings.feature_level * self.levels.penalty(rendered.taps)
            if self.noise:
                loss = loss + self.settings.noise_regularisation * noise_regularisation(self.noise)
            if penalty is not None:
                loss = loss + penalty(latent)
            if detail:
                loss = loss + self.settings.detail_weight * sum(d.square().mean() for d in detail.values())
            loss.backward()
            optimiser.step(peak_rate * learning_rate_ramp(t))
            if self.noise:
                _renormalise(self.noise)
            self.done += 1
            if self.progress is not None:
                self.progress(self.done, self.total, images.detach())
        return latent.detach()


class _Adam:
    """Adam (betas 0.9, 0.999, as NVlabs' projector uses it) over a few tensors; torch.optim's
    first use imports the compiler stack, seconds that a projection of one picture notices."""

    def __init__(self, tensors: list[Tensor], betas: tuple[float, float] = (0.9, 0.999),
                 eps: float = 1e-8):
        self.tensors, self.betas, self.eps, self.count = tensors, betas, eps, 0
        self.means = [torch.zeros_like(t) for t in tensors]
        self.squares = [torch.zeros_like(t) for t in tensors]

    @torch.no_grad()
    def step(self, rate: float) -> None:
        """One step at ``rate`` along the gradients, which are used up (set to None)."""
        self.count += 1
        b1, b2 = self.betas
        for tensor, mean, square in zip(self.tensors, self.means, self.squares):
            gradient, tensor.grad = tensor.grad, None
            mean.mul_(b1).add_(gradient, alpha=1 - b1)
            square.mul_(b2).addcmul_(gradient, gradient, value=1 - b2)
            denominator = (square / (1 - b2 ** self.count)).sqrt_().add_(self.eps)
            tensor.addcdiv_(mean, denominator, value=-rate / (1 - b1 ** self.count))


def learning_rate_ramp(t: float) -> float:
    """NVlabs' factor at fraction ``t`` of a phase: linear warm-up, cosine cool-down."""
    down = min(1.0, (1.0 - t) / LR_RAMP_DOWN)
    down = 0.5 - 0.5 * math.cos(down * math.pi)
    return down * min(1.0, t / LR_RAMP_UP)


def noise_regularisation(noise: dict[str, Tensor]) -> Tensor:
    """NVlabs' penalty: squared mean products of each map with itself shifted by one pixel, down
    and across, at every scale of an average-pooled pyramid (down to 8 pixels)."""
    total = next(iter(noise.values())).new_zeros(())
    for value in noise.values():
        level = value[None, None]
        while True:
            total = total + (level * torch.roll(level, shifts=1, dims=3)).mean() ** 2
            total = total + (level * torch.roll(level, shifts=1, dims=2)).mean() ** 2
            if min(level.shape[2:]) <= 8:
                break
            level = F.avg_pool2d(level, kernel_size=2)
    return total


class WPrior:
    """W's distribution as a Gaussian fitted to mapped samples; ``distance`` is the squared
    Mahalanobis distance of latents from it per dimension (about 1 for the generator's samples)."""

    RIDGE = 1e-3  # added to the covariance, a share of its mean variance: W is nearly flat in places

    def __init__(self, samples: Tensor):
        self.mean = samples.mean(dim=0)
        covariance = torch.cov((samples - self.mean).T)
        ridge = self.RIDGE * covariance.diagonal().mean()
        covariance = covariance + ridge * torch.eye(len(covariance), device=samples.device)
        self.whitening = torch.linalg.inv(torch.linalg.cholesky(covariance)).T  # x @ it: unit covariance

    def distance(self, latents: Tensor) -> Tensor:
        """The mean over ``latents`` (..., w_dim) of their squared Mahalanobis distance / w_dim."""
        return ((latents - self.mean) @ self.whitening).square().mean()


def _prior_penalty(generator: GeneratorBase,
                   settings: ProjectionSettings) -> Callable[[Tensor], Tensor] | None:
    if not settings.w_plus_prior:
        return None
    prior = WPrior(_mapped_samples(generator, settings.class_index))
    return lambda rows: settings.w_plus_prior * prior.distance(rows)


def _renormalise(noise: dict[str, Tensor]) -> None:
    with torch.no_grad():
        for value in noise.values():
            value -= value.mean()
            value *= value.square().mean().rsqrt()


def _jittered(w: Tensor, spread: float, t: float, random: torch.Generator) -> Tensor:
    scale = spread * max(0.0, 1.0 - t / JITTER_FADE) ** 2
    jitter = torch.randn(w.shape, generator=random).to(w.device) * scale
    return w + jitter


def _synthesized(generator: GeneratorBase, w: Tensor, noise: dict[str, Tensor] | None,
                 taps: Sequence[str] = (), dtype: torch.dtype = torch.float32,
                 detail: dict[str, Tensor] | None = None) -> SynthesisOutput:
    ws = w if w.ndim == 3 else w[:, None].expand(-1, generator.num_ws, -1)
    return generator.synthesize(ws, noise_mode="const", noise_maps=noise, taps=taps, compute_dtype=dtype,
                                hooks=with_detail({}, detail or {}))


def detail_layer(generator: GeneratorBase) -> str:
    """The layer a detail map is added to: the last convolution at most 1/8 of the image high
    whose map holds at most ``MAX_DETAIL_VALUES`` (a model with none: its coarsest convolution's).
    Later layers are where edits paint (the built-in recipes: 1/4 and 1/2), and where a map would
    redraw what an edit changed; the size keeps a 1024 px model's latent files and scenes small
    (its 32 px layer, 2 MB, where the 128 px one would be 16 MB)."""
    convolutions = [info for info in generator.layers if info.kind == "conv"] or list(generator.layers)
    fitting = [info for info in convolutions if info.height * 8 <= generator.img_height
               and info.channels * info.height * info.width <= MAX_DETAIL_VALUES]
    if fitting:
        return fitting[-1].name
    coarsest = min(info.height for info in convolutions)
    return [info for info in convolutions if info.height == coarsest][-1].name


def _starting_detail(generator: GeneratorBase, device: torch.device) -> dict[str, Tensor]:
    info = generator.layers[generator.layer_index(detail_layer(generator))]
    return {info.name: torch.zeros(info.channels, info.height, info.width, device=device,
                                   requires_grad=True)}


def search_dtype(generator: GeneratorBase, device: torch.device) -> torch.dtype:
    """bfloat16 where ``device`` runs it faster than float32 and the generator computes in it, else
    float32.  Not float16: its narrow range would lose a step's small gradients without scaling."""
    allowed = tuple(dtype for dtype in generator.fast_dtypes if dtype == torch.bfloat16)
    return fast_dtype(device, allowed) or torch.float32


class FeatureLevels:
    """How loud the layers edits paint into (convolutions at 1/4 to 1/2 of the image height) are
    on the generator's samples: each layer's mean |activation| over ``FEATURE_LEVEL_SAMPLES`` of
    them.  ``penalty`` is how far a render's are from that: the sum over the layers of (its level
    / the samples' - 1)^2."""

    def __init__(self, generator: GeneratorBase, class_index: int | None = None):
        height = generator.img_height
        layers = [layer.name for layer in generator.layers
                  if layer.kind == "conv" and height // 4 <= layer.height <= height // 2]
        self.levels: dict[str, float] = {}
        if layers:
            w = _mapped_samples(generator, class_index, FEATURE_LEVEL_SAMPLES)
            with torch.no_grad():
                taps = _synthesized(generator, w, None, layers).taps
            levels = {name: taps[name].abs().mean().item() for name in layers}
            self.levels = {name: level for name, level in levels.items() if level > 0}  # silent layers: no ratio
        self.layers = list(self.levels)

    def penalty(self, taps: dict[str, Tensor]) -> Tensor:
        return sum((taps[name].abs().mean(dtype=torch.float32) / self.levels[name] - 1).square()
                   for name in self.layers)


_MEASURED_LEVELS: weakref.WeakKeyDictionary[GeneratorBase, dict[tuple, FeatureLevels]] = weakref.WeakKeyDictionary()


def feature_levels(generator: GeneratorBase, class_index: int | None = None) -> FeatureLevels:
    """``FeatureLevels`` measured once per generator, class and state of its weights: a batch of
    projections (or the window's second one) would render the same samples again each time."""
    weights = tuple((t.data_ptr(), t._version) for t in (*generator.parameters(), *generator.buffers()))
    measured = _MEASURED_LEVELS.setdefault(generator, {})
    key = (class_index, weights)
    if key not in measured:
        measured.clear()  # levels of weights the generator no longer has
        measured[key] = FeatureLevels(generator, class_index)
    return measured[key]


def latent_spread(generator: GeneratorBase, class_index: int | None = None) -> float:
    """NVlabs' w_std: the root mean squared distance of mapped samples from ``w_avg``."""
    w = _mapped_samples(generator, class_index)
    return (w - w.mean(dim=0)).square().sum(dim=1).mean().sqrt().item()


def _mapped_samples(generator: GeneratorBase, class_index: int | None,
                    count: int = SPREAD_SAMPLES) -> Tensor:
    """(count, w_dim): W as the mapping makes it, the same samples each time (a smaller count:
    the first of them)."""
    z = torch.randn([count, generator.z_dim], generator=torch.Generator().manual_seed(123))
    z = z.to(generator.w_avg.device)
    with torch.no_grad():
        return generator.mapping(z, _classes(generator, z, class_index))[:, 0].float()


def nearest_sample(generator: GeneratorBase, target: Tensor, settings: ProjectionSettings) -> Tensor:
    """(1, w_dim): of ``w_avg`` and ``settings.candidates`` mapped samples (half-way to ``w_avg``,
    where renders are typical), the one whose render is nearest the target in pixels (colours
    first: the search moves shapes more easily than it recolours)."""
    device = generator.w_avg.device
    z = torch.randn([settings.candidates, generator.z_dim],
                    generator=torch.Generator().manual_seed(settings.seed)).to(device)
    with torch.no_grad():
        w = torch.cat([generator.w_avg[None], generator.mapping(z, _classes(generator, z, settings.class_index),
                                                                 truncation_psi=0.5)[:, 0]])
        scores = torch.cat([pixel_distance(_synthesized(generator, chunk, None).image, target, PIXEL_SCALES)
                            for chunk in w.split(CANDIDATE_BATCH)])
    return w[int(scores.argmin())][None]


def _classes(generator: GeneratorBase, z: Tensor, class_index: int | None) -> Tensor | None:
    if not generator.c_dim:
        return None
    c = torch.zeros([len(z), generator.c_dim], device=z.device)
    c[:, class_index or 0] = 1.0
    return c


def _starting_point(generator: GeneratorBase, start_w: Tensor | None) -> tuple[Tensor, Tensor | None]:
    """(w (1, w_dim), W+ rows (1, num_ws, w_dim) or None)."""
    if start_w is None:
        return generator.w_avg.detach().clone()[None].float(), None
    start = start_w.detach().to(generator.w_avg.device, torch.float32)
    if start.shape in ((generator.w_dim,), (1, generator.w_dim)):
        return start.reshape(1, -1), None
    if start.shape == (1, generator.num_ws, generator.w_dim):
        return start.mean(dim=1), start
    raise ProjectionError(f"start_w has shape {tuple(start.shape)}; this model needs "
                          f"({generator.w_dim},), (1, {generator.w_dim}) or "
                          f"(1, {generator.num_ws}, {generator.w_dim})")


def _starting_noise(generator: GeneratorBase, device: torch.device) -> dict[str, Tensor]:
    """The generator's stored noise maps, copied: the search starts from its usual render."""
    stored = generator.stored_noise()
    if not stored:
        raise ProjectionError(f"this {generator.architecture} model has no noise inputs to optimise")
    return {name: value.detach().clone().to(device).requires_grad_(True)
            for name, value in stored.items()}


def _checked_target(generator: GeneratorBase, target: Tensor) -> Tensor:
    expected = (1, generator.img_channels, generator.img_height, generator.img_width)
    if tuple(target.shape) != expected:
        raise ProjectionError(f"the target has shape {tuple(target.shape)}; this model needs "
                              f"{expected} (crop_to_aspect makes one from any picture)")
    return target.float()


@contextlib.contextmanager
def _frozen_weights(generator: GeneratorBase) -> Iterator[None]:
    """No gradients for the generator's weights during the search; the flags are restored after."""
    flags = [(p, p.requires_grad) for p in generator.parameters()]
    generator.requires_grad_(False)
    try:
        yield
    finally:
        for parameter, flag in flags:
            parameter.requires_grad_(flag)
