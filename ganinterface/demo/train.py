"""Resumable, deterministic GAN training of the built-in portrait generator, on a CPU or a GPU.

Trains ganinterface's own StyleGAN2 generator (our numerics, NVlabs state-dict keys) against
``ResidualDiscriminator`` on portraits drawn on the fly by ``demo.portraits.render_batch`` (an endless,
deterministic stream of seeds, so there is no data set on disk and no overfitting).

The recipe is StyleGAN2's: non-saturating logistic loss, lazy R1 on reals (in float32), Adam with the
lazy-regularisation correction, an exponential moving average of G with ramp-up, style mixing.  Made
affordable on two cores by: a small generator (channels 128 -> 32), bfloat16 autocast and
channels_last, one generator forward per step (the fakes the discriminator sees are the ones the
generator is then trained through), no path-length regulariser, an auxiliary loss in which the
discriminator also predicts the renderer's labels (mouth open, hair band) on real images, and
optional data-parallel worker processes (``--workers 2 --threads 1`` shares a busy CPU far better
than one process with two OpenMP threads).  Where there is a GPU (``--device auto`` picks CUDA) the
networks run there and the portraits are rendered ahead of time by a pool of CPU processes.

Everything the run depends on -- networks, optimisers, step, images seen, position in the data stream
and every random state -- is saved atomically to ``RUN_DIR/state.pt`` every few minutes and on
SIGTERM/SIGINT; a resumed CPU run (same number of workers and threads) continues bit for bit as if
it had never stopped.

    python -m ganinterface.demo.train --minutes 120          # or: ganinterface train-demo ...
"""

from __future__ import annotations

import argparse
import copy
import dataclasses
import datetime
import io
import json
import logging
import math
import os
import platform
import random
import signal
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from ganinterface import bundled
from ganinterface.demo.discriminator import ResidualDiscriminator
from ganinterface.atomic import atomic_write, atomic_write_bytes
from ganinterface.export.images import contact_sheet, save_png

log = logging.getLogger(__name__)

DEFAULT_RUN_DIR = Path("~/.cache/ganinterface/train-portraits").expanduser()
# Training from a checkout replaces the built-in model in place (the editable install's folder).
DEFAULT_EXPORT = bundled.builtin_checkpoint()
STATE_FILE = "state.pt"
STATE_VERSION = 1
# Training images come from seeds far above anything a user or evaluation picks by hand.
DATA_SEED_BASE = 10_000_000
AUX_LABELS = ("mouth_open", "hair_band")

DataSource = Callable[[Sequence[int], int, int], tuple[np.ndarray, list[dict[str, Any]]]]


class TrainingError(Exception):
    """A problem the user can fix (bad run directory, incompatible state file); one line."""


@dataclasses.dataclass(frozen=True)
class TrainSettings:
    """Everything that decides the weights; stored in the state file and fixed for a run."""

    seed: int = 0
    img_height: int = 128
    img_width: int = 64
    z_dim: int = 128
    w_dim: int = 256
    mapping_layers: int = 4
    g_channel_base: int = 4096  # channels = min(base / resolution, max): 128 at 4..32, 64, 32
    g_channel_max: int = 128
    d_channel_base: int = 4096
    d_channel_max: int = 128
    batch: int = 32
    lr: float = 0.002
    # NVlabs' heuristic (0.0002 * H * W / batch = 0.1 at batch 16) let D dominate (G loss ~5) and G
    # collapsed to one portrait by 25k images; gamma 1 at batch 32 (with the aux loss) collapsed
    # by 23k too.  Third run: gamma 4, no aux loss, mixing 0.9 (not yet shown to avoid collapse).
    r1_gamma: float = 4.0
    r1_interval: int = 16
    ema_kimg: float = 10.0  # half-life of the G average, in thousands of images
    ema_rampup: float = 0.05  # ... but at most this fraction of the images seen so far
    style_mixing: float = 0.9
    aux_weight: float = 0.0  # > 0: discriminator also predicts AUX_LABELS on reals
    bf16: bool = True
    channels_last: bool = True

    def generator_kwargs(self) -> dict[str, Any]:
        return dict(
            z_dim=self.z_dim, c_dim=0, w_dim=self.w_dim, img_resolution=self.img_height,
            img_width=self.img_width, img_channels=3,
            mapping_kwargs=dict(num_layers=self.mapping_layers),
            channel_base=self.g_channel_base, channel_max=self.g_channel_max,
            architecture="skip", use_noise=True, num_fp16_res=0, conv_clamp=None)


# Settings a resumed run may change with --retune: they steer the optimisation, not the shapes.
RETUNABLE = ("lr", "r1_gamma", "style_mixing", "ema_kimg")


@dataclasses.dataclass
class RunOptions:
    """How this invocation runs; free to change between resumed runs."""

    run_dir: Path = DEFAULT_RUN_DIR
    minutes: float | None = None  # stop after this much wall time in this invocation
    kimg: float | None = None  # stop once this many thousand images have been seen in total
    resume: bool = True
    init_from: Path | None = None  # warm-start from an exported generator (and its discriminator)
    # A warm start without a discriminator trains a fresh D alone this long first.  Against the
    # 533k generator a fresh D stayed at chance (loss 1.386) for ~13k images and reached 1.27 by
    # 50k; G then still lost ground (confident share 82% -> 67% over the next 48k images) and took
    # ~250k images to recover (the shipped 846k model is that run).
    d_warmup_kimg: float = 50.0
    retune: bool = False  # on resume, take RETUNABLE settings from the command line
    # The settings the command line named (None: all of them).  Only these are retuned or reported
    # as ignored, so `--retune --lr X` keeps the run's own R1 weight instead of the default's.
    given: frozenset[str] | None = None
    export_path: Path | None = DEFAULT_EXPORT
    threads: int = 2  # torch threads per worker
    workers: int = 1  # data-parallel worker processes
    checkpoint_minutes: float = 5.0
    export_minutes: float = 10.0
    log_seconds: float = 60.0
    device: str = "auto"  # "auto" (CUDA when present, else CPU), "cpu", "cuda", "cuda:N", "mps"
    data_workers: int | None = None  # processes rendering ahead; None: none on CPU, cores - 2 on a GPU


@dataclasses.dataclass
class LossStats:
    g: float = 0.0
    d: float = 0.0
    aux: float = 0.0
    r1: float = 0.0
    steps: int = 0
    r1_steps: int = 0

    def mean(self) -> str:
        n = max(self.steps, 1)
        r1 = self.r1 / max(self.r1_steps, 1)
        return f"loss G {self.g / n:.3f}  D {self.d / n:.3f}  aux {self.aux / n:.3f}  R1 {r1:.4f}"


def render_training_batch(seeds: Sequence[int], height: int, width: int
                          ) -> tuple[np.ndarray, list[dict[str, Any]]]:
    from ganinterface.demo.portraits import render_batch

    return render_batch(list(seeds), height, width)


def default_data_source() -> DataSource:
    return render_training_batch


class PrefetchingSource:
    """Renders the batches a run will ask for next in a pool of processes, so a GPU never waits.

    Requests are expected to walk the seed stream in equal strides (as ``Trainer.next_reals`` does);
    a request that was not foreseen (after a resume, say) is rendered at once and the queue restarts
    from it, so the images returned are always exactly those asked for.
    """

    def __init__(self, render: DataSource, processes: int, depth: int | None = None):
        import concurrent.futures
        import multiprocessing

        self.render = render
        self.depth = depth or 2 * processes
        self.pool = concurrent.futures.ProcessPoolExecutor(
            processes, mp_context=multiprocessing.get_context("spawn"))
        self.queue: list[tuple[tuple[int, ...], Any]] = []

    def __call__(self, seeds: Sequence[int], height: int, width: int
                 ) -> tuple[np.ndarray, list[dict[str, Any]]]:
        wanted = tuple(seeds)
        if self.queue and self.queue[0][0] == wanted:
            result = self.queue.pop(0)[1].result()
        else:
            self.queue.clear()
            result = self.render(wanted, height, width)
        self._top_up(wanted, height, width)
        return result

    def _top_up(self, last: tuple[int, ...], height: int, width: int) -> None:
        stride = len(last)
        if self.queue:
            last = self.queue[-1][0]
        while len(self.queue) < self.depth:
            last = tuple(seed + stride for seed in last)
            self.queue.append((last, self.pool.submit(self.render, last, height, width)))

    def close(self) -> None:
        self.queue.clear()
        self.pool.shutdown(wait=False, cancel_futures=True)


def images_to_tensor(images: np.ndarray) -> torch.Tensor:
    """uint8 (N, H, W, 3) -> float32 (N, 3, H, W) in [-1, 1]."""
    return torch.from_numpy(np.ascontiguousarray(images)).permute(0, 3, 1, 2).float() / 127.5 - 1.0


def tensor_to_images(images: torch.Tensor) -> np.ndarray:
    """float (N, 3, H, W) nominally in [-1, 1] -> uint8 (N, H, W, 3), as NVlabs saves samples."""
    scaled = (images.detach().float() * 127.5 + 128).clamp(0, 255).to(torch.uint8)
    return scaled.permute(0, 2, 3, 1).contiguous().cpu().numpy()


def ema_beta(settings: TrainSettings, images_seen: int) -> float:
    half_life = settings.ema_kimg * 1000
    if settings.ema_rampup:
        half_life = min(half_life, images_seen * settings.ema_rampup)
    return 0.5 ** (settings.batch / max(half_life, 1e-8))


class Trainer:
    """Owns the networks, optimisers, data stream and random states of one training run."""

    def __init__(self, settings: TrainSettings, data_source: DataSource | None = None,
                 device: torch.device | str = "cpu"):
        from ganinterface.models.stylegan2 import StyleGAN2Generator

        self.settings = settings
        self.data_source = data_source or default_data_source()
        # Latents, mixing and noise seeds are drawn on the CPU on every device, so a run's random
        # stream (and its saved state) does not depend on where it trains.
        self.device = torch.device(device)
        torch.manual_seed(settings.seed)
        self.G = StyleGAN2Generator(**settings.generator_kwargs()).train().requires_grad_(False)
        self.D = ResidualDiscriminator(
            settings.img_height, settings.img_width, channel_base=settings.d_channel_base,
            channel_max=settings.d_channel_max,
            aux_outputs=len(AUX_LABELS) if settings.aux_weight else 0).train().requires_grad_(False)
        self.G.to(self.device)
        self.D.to(self.device)
        if settings.channels_last:
            self.G.to(memory_format=torch.channels_last)
            self.D.to(memory_format=torch.channels_last)
        self.G_ema = copy.deepcopy(self.G).eval()
        ratio = self._lazy_r1_ratio
        self.opt_G = torch.optim.Adam(self.G.parameters(), lr=settings.lr, betas=(0.0, 0.99), eps=1e-8)
        self.opt_D = torch.optim.Adam(self.D.parameters(), lr=settings.lr * ratio,
                                      betas=(0.0, 0.99 ** ratio), eps=1e-8)
        self.rng = torch.Generator().manual_seed(settings.seed)
        self.step = 0
        self.images_seen = 0
        self.data_position = 0  # index of the next image in the seed stream
        self.train_seconds = 0.0  # wall time spent training, over all invocations
        self.started = _now()
        self.sessions: list[dict[str, Any]] = []  # one entry per invocation, for the model card
        self.session_note: dict[str, Any] = {}  # what the next session entry should also say
        # A warm start without a discriminator first trains D alone (G fixed) on this many images,
        # so an untrained D does not push a trained G around; counted apart from images_seen.
        self.d_warmup_left = 0
        self.warmup_steps = 0
        # Data-parallel workers (see `run`): each takes its share of every batch; gradients are averaged.
        self.rank, self.world = 0, 1

    def _share(self) -> slice:
        """This worker's rows of a batch drawn in full by every worker (the same random stream)."""
        per_worker = self.settings.batch // self.world
        return slice(self.rank * per_worker, (self.rank + 1) * per_worker)

    # ---- data and latents ---------------------------------------------------------------------
    def next_reals(self) -> tuple[torch.Tensor, torch.Tensor]:
        s = self.settings
        first = DATA_SEED_BASE + self.data_position
        seeds = range(first, first + s.batch)[self._share()]
        images, labels = self.data_source(seeds, s.img_height, s.img_width)
        self.data_position += s.batch
        reals = images_to_tensor(images).to(self.device, non_blocking=True)
        if s.channels_last:
            reals = reals.contiguous(memory_format=torch.channels_last)
        targets = torch.tensor([[float(bool(item[name])) for name in AUX_LABELS] for item in labels])
        return reals, targets.to(self.device)

    def _autocast(self) -> torch.autocast:
        return torch.autocast(self.device.type, dtype=torch.bfloat16, enabled=self.settings.bf16)

    def generate(self, update_emas: bool = True) -> torch.Tensor:
        """This worker's fakes for one step, with style mixing; the graph reaches G's parameters."""
        s = self.settings
        z = torch.randn(s.batch, s.z_dim, generator=self.rng)[self._share()].to(self.device)
        mix_cutoff = int(torch.randint(1, self.G.num_ws, (), generator=self.rng))
        mix = float(torch.rand((), generator=self.rng)) < s.style_mixing
        z_mix = torch.randn(s.batch, s.z_dim, generator=self.rng)[self._share()].to(self.device)
        noise_seed = int(torch.randint(0, 2**31 - 1, (), generator=self.rng)) + self.rank
        with self._autocast():
            ws = self.G.mapping(z, None, update_emas=update_emas)
            if mix:
                ws_mix = self.G.mapping(z_mix, None, update_emas=False)
                ws = torch.cat([ws[:, :mix_cutoff], ws_mix[:, mix_cutoff:]], dim=1)
            return self.G.synthesize(ws, noise_mode="random", noise_seed=noise_seed).image

    # ---- one optimisation step ----------------------------------------------------------------
    def train_step(self) -> LossStats:
        if self.d_warmup_left > 0:
            return self._warm_up_discriminator()
        s = self.settings
        stats = LossStats(steps=1)
        reals, targets = self.next_reals()
        self.G.requires_grad_(True)
        fakes = self.generate()
        self._update_discriminator(reals, targets, fakes, stats,
                                   r1_due=(self.step + self.warmup_steps) % s.r1_interval == 0)

        # Generator: through the updated D, back along the graph built above (G is still unchanged).
        with self._autocast():
            gen_logits, _ = self.D(fakes)
        loss_G = F.softplus(-gen_logits).mean()
        stats.g = float(loss_G.detach())
        self.opt_G.zero_grad(set_to_none=True)
        loss_G.backward()
        self._average_gradients(self.G)
        self.opt_G.step()
        self.G.requires_grad_(False)

        self.step += 1
        self.images_seen += s.batch
        if self.rank == 0:  # only worker 0 saves and exports, so only it needs the average
            self._update_ema()
        return stats

    def _update_discriminator(self, reals: torch.Tensor, targets: torch.Tensor, fakes: torch.Tensor,
                              stats: LossStats, r1_due: bool) -> None:
        """One D step: fakes -> 0, reals -> 1, the renderer's labels on reals, and R1 when due."""
        s = self.settings
        self.D.requires_grad_(True)
        with self._autocast():
            fake_logits, _ = self.D(fakes.detach())
            real_logits, real_aux = self.D(reals)
        loss_D = F.softplus(fake_logits).mean() + F.softplus(-real_logits).mean()
        stats.d = float(loss_D.detach())
        if s.aux_weight:
            loss_aux = F.binary_cross_entropy_with_logits(real_aux, targets)
            stats.aux = float(loss_aux.detach())
            loss_D = loss_D + s.aux_weight * loss_aux
        self.opt_D.zero_grad(set_to_none=True)
        loss_D.backward()
        self._average_gradients(self.D)
        self.opt_D.step()
        if s.r1_gamma and r1_due:
            stats.r1, stats.r1_steps = self._r1_step(reals), 1
        self.D.requires_grad_(False)

    def _warm_up_discriminator(self) -> LossStats:
        """A D step against the fixed G (no G graph, no G or G_ema change)."""
        stats = LossStats(steps=1)
        reals, targets = self.next_reals()
        with torch.no_grad():
            fakes = self.generate(update_emas=False)
        self._update_discriminator(reals, targets, fakes, stats,
                                   r1_due=self.warmup_steps % self.settings.r1_interval == 0)
        self.warmup_steps += 1
        self.d_warmup_left = max(0, self.d_warmup_left - self.settings.batch)
        return stats

    def _average_gradients(self, module: torch.nn.Module) -> None:
        """All-reduce the gradients in one flat buffer; every worker then takes the same Adam step."""
        if self.world == 1:
            return
        import torch.distributed as dist

        grads = [p.grad for p in module.parameters() if p.grad is not None]
        flat = torch.cat([g.reshape(-1) for g in grads])
        dist.all_reduce(flat)
        flat /= self.world
        offset = 0
        for grad in grads:
            grad.copy_(flat[offset:offset + grad.numel()].view(grad.shape))
            offset += grad.numel()

    def _r1_step(self, reals: torch.Tensor) -> float:
        """Lazy R1 on reals, in float32 (bf16 gradients of gradients are too coarse)."""
        s = self.settings
        reals = reals.detach().requires_grad_(True)
        logits, _ = self.D(reals)
        (gradient,) = torch.autograd.grad(logits.sum(), reals, create_graph=True)
        penalty = gradient.square().sum(dim=(1, 2, 3)).mean()
        self.opt_D.zero_grad(set_to_none=True)
        (penalty * (s.r1_gamma / 2) * s.r1_interval).backward()
        self._average_gradients(self.D)
        self.opt_D.step()
        return float(penalty.detach())

    @torch.no_grad()
    def _update_ema(self) -> None:
        beta = ema_beta(self.settings, self.images_seen)
        for average, current in zip(self.G_ema.parameters(), self.G.parameters()):
            average.copy_(current.lerp(average, beta))
        for average, current in zip(self.G_ema.buffers(), self.G.buffers()):
            average.copy_(current)

    # ---- state ------------------------------------------------------------------------------
    def state_dict(self) -> dict[str, Any]:
        return dict(
            version=STATE_VERSION,
            settings=dataclasses.asdict(self.settings),
            G=self.G.state_dict(), D=self.D.state_dict(), G_ema=self.G_ema.state_dict(),
            opt_G=self.opt_G.state_dict(), opt_D=self.opt_D.state_dict(),
            step=self.step, images_seen=self.images_seen, data_position=self.data_position,
            train_seconds=self.train_seconds, started=self.started, sessions=self.sessions,
            d_warmup_left=self.d_warmup_left, warmup_steps=self.warmup_steps,
            rng=self.rng.get_state(), torch_rng=torch.get_rng_state(),
            numpy_rng=np.random.get_state(), python_rng=random.getstate())

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.G.load_state_dict(state["G"])
        self.D.load_state_dict(state["D"])
        self.G_ema.load_state_dict(state["G_ema"])
        self.opt_G.load_state_dict(state["opt_G"])
        self.opt_D.load_state_dict(state["opt_D"])
        self._set_learning_rates()  # the optimisers' files carry the lr they were saved with
        self.step = state["step"]
        self.images_seen = state["images_seen"]
        self.data_position = state["data_position"]
        self.train_seconds = state["train_seconds"]
        self.started = state["started"]
        self.sessions = list(state.get("sessions", []))
        self.d_warmup_left = state.get("d_warmup_left", 0)  # states saved before warm-ups existed
        self.warmup_steps = state.get("warmup_steps", 0)
        self.rng.set_state(state["rng"])
        torch.set_rng_state(state["torch_rng"])
        np.random.set_state(state["numpy_rng"])
        random.setstate(state["python_rng"])

    @property
    def _lazy_r1_ratio(self) -> float:
        """Lazy R1 every k steps: D's lr and betas are scaled as NVlabs do (Karras et al. 2020, App. B)."""
        return self.settings.r1_interval / (self.settings.r1_interval + 1)

    def _set_learning_rates(self) -> None:
        for group in self.opt_G.param_groups:
            group["lr"] = self.settings.lr
        for group in self.opt_D.param_groups:
            group["lr"] = self.settings.lr * self._lazy_r1_ratio

    def save_state(self, run_dir: Path) -> Path:
        """Write the full state to ``run_dir/state.pt`` atomically (never a half-written file)."""
        run_dir.mkdir(parents=True, exist_ok=True)
        self._note_session_end()
        buffer = io.BytesIO()
        torch.save(self.state_dict(), buffer)
        path = run_dir / STATE_FILE
        with atomic_write(path) as handle:
            handle.write(buffer.getbuffer())
        return path

    def warm_start_from(self, path: Path, card: dict[str, Any], d_warmup_images: int) -> None:
        """Continue an exported run: G and G_ema from ``path``, the counters from its ``card`` (so
        the next card still says how much the generator has seen), and the discriminator exported
        beside it.  Without that file D starts fresh and trains alone on ``d_warmup_images`` first.
        Optimiser moments are not exported; Adam rebuilds them within a few hundred steps."""
        from ganinterface.models.base import CheckpointError
        from ganinterface.models.native import load_native

        try:
            source = load_native(path)
        except CheckpointError as error:
            raise TrainingError(f"{path}: cannot warm-start from it ({error})") from None
        _load_weights(self.G, source.state_dict(), path, "generator")
        _load_weights(self.G_ema, source.state_dict(), path, "generator")
        self.images_seen = self.data_position = int(card.get("images_seen", 0))  # new images next
        self.step = int(card.get("steps", 0))
        self.train_seconds = float(card.get("training_seconds", 0.0))
        self.started = card.get("started", self.started)
        self.sessions = list(card.get("sessions", []))
        d_path = discriminator_path(path)
        if d_path.exists():
            from safetensors.torch import load_file

            try:
                weights = load_file(d_path)
            except Exception as error:  # safetensors' own errors subclass nothing more specific
                raise TrainingError(f"{d_path}: cannot read discriminator ({error})") from None
            _load_weights(self.D, weights, d_path, "discriminator")
            self.session_note = {"warm_start": f"{path.name} with its discriminator"}
        else:
            self.d_warmup_left = d_warmup_images
            self.session_note = {"warm_start": f"{path.name}; no discriminator beside it, so D "
                                               f"trained alone on {d_warmup_images} images first"}

    # ---- outputs ------------------------------------------------------------------------------
    @torch.no_grad()
    def sample_sheet(self, count: int = 32, columns: int = 8) -> np.ndarray:
        """G_ema on fixed latents (seeds 0..count-1, psi 1) above a row of training renders."""
        z = torch.from_numpy(np.concatenate(
            [np.random.RandomState(seed).randn(1, self.settings.z_dim) for seed in range(count)]))
        ws = self.G_ema.mapping(z.float().to(self.device), None)
        fakes = tensor_to_images(self.G_ema.synthesize(ws, noise_mode="const").image)
        render = getattr(self.data_source, "render", self.data_source)  # not through a prefetch queue
        reals, _ = render(range(columns), self.settings.img_height, self.settings.img_width)
        return contact_sheet(list(fakes) + list(reals), columns=columns)

    def model_card(self) -> dict[str, Any]:
        s = self.settings
        return dict(
            name="portraits-128x64",
            description="StyleGAN2 generator trained by ganinterface on its own procedural anime "
                        "portraits (ganinterface.demo.portraits); attributes of the training images "
                        "are known, see the quality report in docs/.",
            architecture=f"StyleGAN2 (skip generator, noise, {s.mapping_layers}-layer mapping, "
                         f"z {s.z_dim}, w {s.w_dim}, channels min({s.g_channel_base}/res, "
                         f"{s.g_channel_max})), {s.img_height}x{s.img_width} (HxW)",
            generator_parameters=sum(p.numel() for p in self.G.parameters()),
            discriminator=f"residual, {sum(p.numel() for p in self.D.parameters())} parameters",
            images_seen=self.images_seen,
            steps=self.step,
            training_seconds=round(self.train_seconds),
            images_per_second=round(self.images_seen / max(self.train_seconds, 1e-9), 2),
            hardware=_hardware(self.sessions),
            sessions=self.sessions,
            settings=dataclasses.asdict(s),
            techniques=[
                "non-saturating logistic loss",
                f"lazy R1 on reals every {s.r1_interval} steps, gamma {s.r1_gamma}, in float32",
                "Adam (0, 0.99) with the lazy-regularisation correction of lr and betas",
                f"G EMA, half-life {s.ema_kimg} kimg with ramp-up {s.ema_rampup}",
                f"style mixing p={s.style_mixing}",
                "bfloat16 autocast and channels_last" if s.bf16 else "float32",
                "one G forward per step: D trains on the fakes G is then trained through",
                f"auxiliary loss: D predicts {', '.join(AUX_LABELS)} on reals (weight {s.aux_weight})"
                if s.aux_weight else "no auxiliary loss",
                "no path-length regulariser",
                "data parallel over worker processes (gradients averaged every step): on a busy "
                "2-core machine 2 single-thread processes train ~2x faster than 1 process with "
                "2 OpenMP threads",
                "endless deterministic data: portraits rendered on the fly from a seed stream",
            ],
            started=self.started,
            date=_now(),
        )

    def _note_session_end(self) -> None:
        if self.sessions:
            self.sessions[-1].update(ended=_now(), images_at_end=self.images_seen)

    def export(self, path: Path) -> None:
        from ganinterface.models.native import save_native

        self._note_session_end()
        generator = copy.deepcopy(self.G_ema).cpu().to(memory_format=torch.contiguous_format).eval()
        for name, tensor in list(generator.state_dict().items()):
            if not tensor.is_contiguous():  # safetensors stores contiguous tensors only
                raise TrainingError(f"internal: {name} is not contiguous after conversion")
        path.parent.mkdir(parents=True, exist_ok=True)
        save_native(generator, path, provenance=dict(trained_by="ganinterface.demo.train"),
                    model_card=self.model_card())
        self.export_discriminator(discriminator_path(path))

    def export_discriminator(self, path: Path) -> None:
        """D's weights, so a later warm start (``--init-from``) continues against a trained D."""
        from safetensors.torch import save

        weights = {k: v.detach().to("cpu", memory_format=torch.contiguous_format).contiguous()
                   for k, v in self.D.state_dict().items()}
        atomic_write_bytes(path, save(weights, metadata={"trained_by": "ganinterface.demo.train",
                                                         "images_seen": str(self.images_seen)}))


def discriminator_path(generator_path: Path) -> Path:
    """``X.safetensors`` -> ``X.discriminator.safetensors``: the D exported with a generator."""
    return generator_path.with_name(f"{generator_path.stem}.discriminator.safetensors")


def _load_weights(module: torch.nn.Module, weights: dict[str, torch.Tensor], path: Path,
                  what: str) -> None:
    try:
        module.load_state_dict(weights)
    except RuntimeError as error:
        raise TrainingError(f"{path}: does not fit the {what} being trained "
                            f"({str(error).splitlines()[0]})") from None


def _hardware(sessions: list[dict[str, Any]]) -> str:
    """Where the run trained, session by session (older sessions did not record it: the CPU)."""
    seen = []
    for session in sessions:
        where = session.get("hardware") or "CPU"
        if where not in seen:
            seen.append(where)
    return "; then ".join(seen) if seen else "CPU"


def _describe_hardware(device: torch.device, options: RunOptions) -> str:
    if device.type != "cpu":
        name = torch.cuda.get_device_name(device) if device.type == "cuda" else f"Apple GPU ({device})"
        return f"{name} with {options.data_workers} rendering process(es) on {_cpu_name()}"
    return (f"{_cpu_name()} ({os.cpu_count()} cores, shared with other jobs), {options.workers} "
            f"worker process(es) x {options.threads} torch thread(s), no GPU")


def _cpu_name() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or f"{platform.machine()} CPU"


def _now() -> str:
    return datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds")


# ---- the run loop ---------------------------------------------------------------------------------

class _StopFlag:
    """Set by SIGTERM/SIGINT; the loop finishes its step, saves and returns."""

    def __init__(self) -> None:
        self.signal: int | None = None

    def __call__(self, signum: int, frame: object) -> None:
        self.signal = signum


def load_or_create(settings: TrainSettings, options: RunOptions,
                   data_source: DataSource | None = None, quiet: bool = False,
                   device: torch.device | str = "cpu") -> Trainer:
    state_path = options.run_dir / STATE_FILE
    if options.resume and state_path.exists():
        try:
            state = torch.load(state_path, map_location="cpu", weights_only=False)
        except Exception as error:  # a damaged file must end as a one-line message
            raise TrainingError(f"{state_path}: cannot read training state ({error})") from None
        if not isinstance(state, dict) or state.get("version") != STATE_VERSION:
            raise TrainingError(f"{state_path}: not a ganinterface training state "
                                f"(version {STATE_VERSION} expected)")
        stored = _continued(TrainSettings(**state["settings"]), settings, options, quiet)
        if options.init_from is not None and not quiet:
            log.warning("resuming %s, so --init-from %s is ignored", state_path, options.init_from)
        trainer = Trainer(stored, data_source, device)
        trainer.load_state_dict(state)
        if not quiet:
            log.info("resumed %s at step %d, %.1f kimg", state_path, trainer.step,
                     trainer.images_seen / 1000)
        return trainer
    if options.init_from is None:
        return Trainer(settings, data_source, device)
    card = exported_card(options.init_from)
    known = {f.name for f in dataclasses.fields(TrainSettings)}
    stored = {k: v for k, v in (card.get("settings") or {}).items() if k in known}
    if stored:  # continue the exported run as it was trained, unless --retune says otherwise
        settings = _continued(TrainSettings(**stored), settings, options, quiet)
    trainer = Trainer(settings, data_source, device)
    trainer.warm_start_from(options.init_from, card, round(options.d_warmup_kimg * 1000))
    if not quiet:
        log.info("warm start from %s at %.1f kimg: %s", options.init_from,
                 trainer.images_seen / 1000, trainer.session_note["warm_start"])
        if trainer.d_warmup_left:
            log.warning("without the run's own discriminator the generator loses quality at first "
                        "(see the README); compare samples.png with the export before shipping")
    return trainer


def _continued(stored: TrainSettings, wanted: TrainSettings, options: RunOptions,
               quiet: bool) -> TrainSettings:
    """A continued run's settings: its own, with --retune's changes."""
    named = options.given if options.given is not None else {f.name for f in dataclasses.fields(wanted)}
    if options.retune:
        stored = _retuned(stored, wanted, named, quiet)
    changed = [f.name for f in dataclasses.fields(wanted)
               if f.name in named and getattr(stored, f.name) != getattr(wanted, f.name)]
    if changed and not quiet:
        log.warning("continuing with the run's own settings; ignoring changed %s", ", ".join(changed))
    return stored


def exported_card(path: Path) -> dict[str, Any]:
    """The model card exported with a generator (empty if it has none)."""
    from ganinterface.models.native import sidecar_path

    try:
        card = json.loads(sidecar_path(path).read_text()).get("model_card")
    except (OSError, ValueError, AttributeError) as error:
        raise TrainingError(f"{path}: cannot read its JSON description ({error})") from None
    return card if isinstance(card, dict) else {}


def _retuned(stored: TrainSettings, wanted: TrainSettings, named: set[str] | frozenset[str],
             quiet: bool) -> TrainSettings:
    changes = {name: getattr(wanted, name) for name in RETUNABLE
               if name in named and getattr(wanted, name) != getattr(stored, name)}
    if changes and not quiet:
        log.info("retuning the run: %s", ", ".join(f"{name} {getattr(stored, name)} -> {value}"
                                                  for name, value in changes.items()))
    return dataclasses.replace(stored, **changes)


def _keep_copy(weights: Path, copy_path: Path) -> None:
    """Copy a native checkpoint (weights and JSON sidecar) instead of serialising it again."""
    from ganinterface.models.native import sidecar_path

    copy_path.parent.mkdir(parents=True, exist_ok=True)
    for source, target in ((weights, copy_path), (sidecar_path(weights), sidecar_path(copy_path)),
                           (discriminator_path(weights), discriminator_path(copy_path))):
        if source.exists():
            atomic_write_bytes(target, source.read_bytes(), durable=False)


def write_outputs(trainer: Trainer, options: RunOptions) -> None:
    sheet = trainer.sample_sheet()
    save_png(options.run_dir / "samples.png", sheet, scale=2)
    history = options.run_dir / "samples"
    history.mkdir(exist_ok=True)
    kimg_name = f"{trainer.images_seen // 1000:06d}kimg"
    save_png(history / f"{kimg_name}.png", sheet)
    if options.export_path is None:
        return
    try:
        trainer.export(options.export_path)
        # GANs can collapse late: keep every export, so an earlier, better one can still be shipped
        _keep_copy(options.export_path,
                   options.run_dir / "exports" / f"{options.export_path.stem}-{kimg_name}.safetensors")
    except (OSError, ValueError, RuntimeError, ImportError) as error:
        # hours of training must not end because one export could not be written; the next try may work
        log.error("could not export to %s: %s", options.export_path, error)
        return
    log.info("exported G_ema (%d images) to %s", trainer.images_seen, options.export_path)


def run(settings: TrainSettings, options: RunOptions, data_source: DataSource | None = None,
        max_steps: int | None = None) -> Trainer:
    """Train until ``options.minutes`` / ``options.kimg`` / ``max_steps`` or a signal; save; return.

    With ``options.workers`` > 1 the batch is split over that many single-process workers (this
    process is worker 0 and alone saves, exports and logs).  On a busy machine, separate processes
    that meet once per step share the CPU far better than OpenMP threads, which wait for each other
    at every operation.
    """
    options.run_dir.mkdir(parents=True, exist_ok=True)
    if options.workers == 1:
        device = _training_device(options)
        if options.data_workers is None:
            options = dataclasses.replace(
                options, data_workers=max(1, (os.cpu_count() or 1) - 2) if device.type == "cuda" else 0)
        prefetcher = None
        if options.data_workers:
            prefetcher = PrefetchingSource(data_source or default_data_source(), options.data_workers)
        try:
            return _train_loop(settings, options, prefetcher or data_source, max_steps, device=device)
        finally:
            if prefetcher is not None:
                prefetcher.close()
    if _training_device(options).type != "cpu":
        raise TrainingError("--workers > 1 trains on the CPU: add --device cpu, or train on the "
                            "GPU with one worker")
    if settings.batch % (4 * options.workers):
        raise TrainingError(f"batch {settings.batch} does not split into groups of 4 over "
                            f"{options.workers} workers")
    import torch.distributed as dist
    import torch.multiprocessing as mp

    address = f"tcp://127.0.0.1:{_free_port()}"
    context = mp.get_context("spawn")
    workers = [context.Process(target=_worker_main, daemon=True,
                               args=(settings, options, max_steps, rank, address))
               for rank in range(1, options.workers)]
    for worker in workers:
        worker.start()
    dist.init_process_group("gloo", init_method=address, rank=0, world_size=options.workers,
                            timeout=datetime.timedelta(minutes=10))
    try:
        return _train_loop(settings, options, data_source, max_steps, rank=0)
    finally:
        dist.destroy_process_group()
        for worker in workers:
            worker.join(timeout=60)


def _training_device(options: RunOptions) -> torch.device:
    from ganinterface.engine.device import DeviceError, pick_device

    try:
        device = pick_device(options.device)
    except DeviceError as error:
        raise TrainingError(str(error)) from None
    if device.type == "cuda":
        torch.backends.cudnn.benchmark = True  # shapes never change during a run
    return device


def _free_port() -> int:
    import socket

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _worker_main(settings: TrainSettings, options: RunOptions, max_steps: int | None, rank: int,
                 address: str) -> None:
    import torch.distributed as dist

    # Ctrl-C reaches the whole process group: worker 0 decides when everyone stops.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    dist.init_process_group("gloo", init_method=address, rank=rank, world_size=options.workers,
                            timeout=datetime.timedelta(minutes=10))
    try:
        _train_loop(settings, options, None, max_steps, rank=rank)
    finally:
        dist.destroy_process_group()


@dataclasses.dataclass
class _Plan:
    """What all workers do next; decided by worker 0 (it alone sees the clock and the signals)."""

    stop: bool = False
    save: bool = False
    export: bool = False

    def shared(self, world: int) -> _Plan:
        if world == 1:
            return self
        import torch.distributed as dist

        flags = torch.tensor([self.stop, self.save, self.export], dtype=torch.int32)
        dist.broadcast(flags, src=0)
        return _Plan(*(bool(flag) for flag in flags))


def _train_loop(settings: TrainSettings, options: RunOptions, data_source: DataSource | None,
                max_steps: int | None, rank: int = 0, device: torch.device | str = "cpu") -> Trainer:
    torch.set_num_threads(options.threads)
    trainer = load_or_create(settings, options, data_source, quiet=rank > 0, device=device)
    trainer.rank, trainer.world = rank, options.workers
    trainer.sessions.append(dict(started=_now(), workers=options.workers, threads=options.threads,
                                 hardware=_describe_hardware(trainer.device, options),
                                 images_at_start=trainer.images_seen,
                                 **{name: getattr(trainer.settings, name) for name in RETUNABLE},
                                 **trainer.session_note))
    trainer.session_note = {}
    stop = _StopFlag()
    previous = {sig: signal.signal(sig, stop) for sig in (signal.SIGTERM, signal.SIGINT)} if rank == 0 else {}
    start = last_save = last_export = last_log = time.monotonic()
    steps_at_log, window = trainer.step + trainer.warmup_steps, LossStats()
    try:
        while True:
            now = time.monotonic()
            plan = _Plan(
                stop=(stop.signal is not None
                      or (options.minutes is not None and now - start >= options.minutes * 60)
                      or (options.kimg is not None and trainer.images_seen >= options.kimg * 1000)
                      or (max_steps is not None and trainer.step >= max_steps)),
                save=now - last_save >= options.checkpoint_minutes * 60,
                export=now - last_export >= options.export_minutes * 60,
            ).shared(options.workers)
            if plan.stop:
                break
            if rank == 0 and plan.save:
                trainer.save_state(options.run_dir)
                last_save = time.monotonic()
            if rank == 0 and plan.export:
                write_outputs(trainer, options)
                last_export = time.monotonic()
            step_start = time.monotonic()
            stats = trainer.train_step()
            trainer.train_seconds += time.monotonic() - step_start
            if rank > 0:
                continue
            for field in ("g", "d", "aux", "r1", "steps", "r1_steps"):
                setattr(window, field, getattr(window, field) + getattr(stats, field))
            if not all(math.isfinite(v) for v in (stats.g, stats.d, stats.r1)):
                raise TrainingError(f"losses are not finite at step {trainer.step}; "
                                    f"state kept at the last checkpoint in {options.run_dir}")
            now = time.monotonic()
            if now - last_log >= options.log_seconds:
                steps = trainer.step + trainer.warmup_steps
                rate = (steps - steps_at_log) * trainer.settings.batch / (now - last_log)
                warming = (f"  D warm-up, {trainer.d_warmup_left / 1000:.1f} kimg left"
                           if trainer.d_warmup_left else "")
                log.info("step %d  %.1f kimg  %.1f img/s  %s%s", trainer.step,
                         trainer.images_seen / 1000, rate, window.mean(), warming)
                last_log, steps_at_log, window = now, steps, LossStats()
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    if rank > 0:
        return trainer
    trainer.save_state(options.run_dir)
    if stop.signal is not None:
        log.info("stopped by signal %d at step %d; state saved in %s", stop.signal, trainer.step,
                 options.run_dir)
    else:
        write_outputs(trainer, options)
        log.info("finished at step %d, %.1f kimg; state saved in %s", trainer.step,
                 trainer.images_seen / 1000, options.run_dir)
    return trainer


# ---- command line (shared with ``ganinterface train-demo``) --------------------------------------

def add_arguments(parser: argparse.ArgumentParser) -> None:
    defaults = TrainSettings()
    parser.add_argument("--minutes", type=float, help="stop after this many minutes (this invocation)")
    parser.add_argument("--kimg", type=float, help="stop once this many thousand images have been seen")
    parser.add_argument("--batch", type=int, help=f"images per step (default: {defaults.batch})")
    parser.add_argument("--run-dir", type=Path, default=DEFAULT_RUN_DIR,
                        help="where the training state, log and samples live (default: %(default)s)")
    parser.add_argument("--resume", action=argparse.BooleanOptionalAction, default=True,
                        help="continue from RUN_DIR/state.pt if it exists (default: yes)")
    parser.add_argument("--retune", action="store_true",
                        help="on resume, use those of --lr, --r1-gamma, --style-mixing and "
                             "--ema-kimg this command gives instead of the run's own (the others "
                             "stay as the run had them; recorded in the model card)")
    parser.add_argument("--init-from", type=Path,
                        help="continue from an exported generator (new runs only): its weights, "
                             "its model card's settings and counters, and the "
                             "X.discriminator.safetensors beside it")
    parser.add_argument("--d-warmup-kimg", type=float, default=RunOptions.d_warmup_kimg,
                        help="with --init-from and no discriminator beside it, train D alone on "
                             "this many thousand images first (default: %(default)s)")
    parser.add_argument("--threads", type=int, default=2, help="torch CPU threads per worker")
    parser.add_argument("--workers", type=int, default=1,
                        help="data-parallel worker processes (on a busy machine, 2 workers x 1 "
                             "thread beat 1 x 2)")
    parser.add_argument("--device", default="auto",
                        help="where the networks train: auto (CUDA when present, else CPU), cpu, "
                             "cuda, cuda:N or mps")
    parser.add_argument("--data-workers", type=int,
                        help="processes rendering portraits ahead of the training loop (default: "
                             "none on the CPU, all cores but two on a GPU)")
    parser.add_argument("--seed", type=int, help=f"random seed of the run (default: {defaults.seed})")
    parser.add_argument("--export", type=Path, default=DEFAULT_EXPORT,
                        help="where G_ema is exported periodically (default: %(default)s)")
    parser.add_argument("--no-export", action="store_true", help="do not export the generator")
    parser.add_argument("--export-minutes", type=float, default=10.0, help="export interval")
    parser.add_argument("--checkpoint-minutes", type=float, default=5.0, help="state save interval")
    parser.add_argument("--r1-gamma", type=float, help=f"R1 weight (default: {defaults.r1_gamma})")
    parser.add_argument("--aux-weight", type=float,
                        help="weight of the discriminator's label loss on reals (0 disables; default: "
                             f"{defaults.aux_weight})")
    parser.add_argument("--style-mixing", type=float,
                        help=f"probability of style mixing (default: {defaults.style_mixing})")
    parser.add_argument("--lr", type=float, help=f"Adam learning rate (default: {defaults.lr})")
    parser.add_argument("--ema-kimg", type=float,
                        help="half-life of the exported generator's weight average, in thousands "
                             f"of images (default: {defaults.ema_kimg})")


# Command-line options that set a TrainSettings field (left out: the field's default).
SETTING_ARGUMENTS = ("seed", "batch", "r1_gamma", "aux_weight", "style_mixing", "lr", "ema_kimg")


def settings_from_args(args: argparse.Namespace) -> tuple[TrainSettings, RunOptions]:
    problems = [f"--{name.replace('_', '-')} must be positive"
                for name in ("minutes", "kimg", "batch", "threads", "workers", "export_minutes",
                             "checkpoint_minutes", "lr", "ema_kimg")
                if getattr(args, name) is not None and getattr(args, name) <= 0]
    if args.data_workers is not None and args.data_workers < 0:
        problems.append("--data-workers must be 0 or more")
    if args.d_warmup_kimg < 0:
        problems.append("--d-warmup-kimg must be 0 or more")
    if args.batch is not None and args.batch % 4 and args.batch > 4:
        problems.append("--batch must be a multiple of 4 (minibatch-std groups of 4)")
    if args.retune and all(getattr(args, name) is None for name in RETUNABLE):
        problems.append("--retune needs at least one of "
                        + ", ".join(f"--{name.replace('_', '-')}" for name in RETUNABLE))
    if problems:
        raise TrainingError("; ".join(problems))
    given = {name: getattr(args, name) for name in SETTING_ARGUMENTS if getattr(args, name) is not None}
    settings = TrainSettings(**given)
    options = RunOptions(
        run_dir=args.run_dir.expanduser(), minutes=args.minutes, kimg=args.kimg, resume=args.resume,
        retune=args.retune,
        init_from=args.init_from and args.init_from.expanduser(), export_path=None if args.no_export else args.export,
        threads=args.threads, workers=args.workers, checkpoint_minutes=args.checkpoint_minutes,
        export_minutes=args.export_minutes, device=args.device, data_workers=args.data_workers,
        d_warmup_kimg=args.d_warmup_kimg, given=frozenset(given))
    return settings, options


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m ganinterface.demo.train", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    add_arguments(parser)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s", datefmt="%H:%M:%S")
    try:
        settings, options = settings_from_args(args)
        run(settings, options)
    except TrainingError as error:
        print(f"train: error: {error}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
