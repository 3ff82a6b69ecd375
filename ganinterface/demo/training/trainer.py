"""The maths of one training run: networks, optimisers, losses, the G average and random states.

StyleGAN2's recipe: non-saturating logistic loss, lazy R1 on reals (in float32), Adam with the
lazy-regularisation correction, an exponential moving average of G with ramp-up, style mixing.
One generator forward per step: the fakes the discriminator sees are the ones the generator is
then trained through.
"""

from __future__ import annotations

import copy
import dataclasses
import datetime
import random
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from ganinterface.models.discriminator import ResidualDiscriminator
from ganinterface.demo.training.data import (DATA_SEED_BASE, DEFAULT_DATA_SOURCE, DataSource,
                                             images_to_tensor)
from ganinterface.demo.training.settings import TrainSettings

AUX_LABELS = ("mouth_open", "hair_band")


@dataclasses.dataclass
class LossStats:
    g: float = 0.0
    d: float = 0.0
    aux: float = 0.0
    r1: float = 0.0
    steps: int = 0
    r1_steps: int = 0

    def add(self, other: LossStats) -> None:
        for field in dataclasses.fields(self):
            setattr(self, field.name, getattr(self, field.name) + getattr(other, field.name))

    def mean(self) -> str:
        n = max(self.steps, 1)
        r1 = self.r1 / max(self.r1_steps, 1)
        return f"loss G {self.g / n:.3f}  D {self.d / n:.3f}  aux {self.aux / n:.3f}  R1 {r1:.4f}"


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
        self.data_source = data_source or DEFAULT_DATA_SOURCE
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
        self.started = utc_now()
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

    def note_session_end(self) -> None:
        """Close this invocation's entry in ``sessions`` (on every save and export)."""
        if self.sessions:
            self.sessions[-1].update(ended=utc_now(), images_at_end=self.images_seen)


def utc_now() -> str:
    return datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds")
