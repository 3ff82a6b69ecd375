"""Training an encoder (``engine.encoder``) for any generator, on the generator's own samples.

The encoder is asked for the latents of samples (style-mixed for a W+ encoder, so rows differ as a
projection's may).  Two losses: the latent loss (squared error in units of W's spread per
dimension, over every row) and the reconstruction loss (squared pixel error at three scales, as
``engine.projection`` measures a render's distance) of the first ``render_batch`` guesses rendered
again, through the generator's frozen weights.

The samples wait in a pool of the last ``pool`` drawn; each step renders ``fresh`` new ones into
it and trains on ``batch`` picked from it, so each sample is trained on about ``batch / fresh`` = 8
times.  On two busy cores rendering a sample costs several times what training on it does: fresh
samples only (16 a step, 1.2 s a step) took the latent loss from 1.0 to just 0.97 in 190 steps.

Resumable like ``train-demo``: the run directory's ``state.pt`` (written atomically every few
minutes and on Ctrl-C/SIGTERM) holds the encoder, Adam's moments, the step and the random stream,
and every sample is drawn from a seed of its own, so a resumed run renders its pool again and
continues as if it had never stopped.  The learning rate decays along a cosine over
the steps asked for.  ``ganinterface train-encoder`` is its command.
"""

from __future__ import annotations

import dataclasses
import io
import logging
import math
import signal
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import torch

from ganinterface.atomic import atomic_write
from ganinterface.demo import portraits
from ganinterface.demo.training.hardware import describe_hardware
from ganinterface.demo.training.loop import StopFlag
from ganinterface.demo.training.settings import RunOptions, TrainingError
from ganinterface.demo.training.trainer import utc_now
from ganinterface.engine.encoder import Encoder, new_encoder, save_encoder
from ganinterface.engine.projection import psnr
from ganinterface.engine.picture_distance import PerceptualDistance
from ganinterface.models.base import GeneratorBase

log = logging.getLogger(__name__)

STATE_FILE = "state.pt"
STATE_VERSION = 2
CHECK_SAMPLES = 64  # generator samples (a stream of their own) that the model card's figures use
TRAINING_STREAM, CHECK_STREAM = 0, 1
# Seeds of the procedural renders trained on and checked on: far from the few hundred that the
# reports use (``demo-eval --projection`` renders seeds 0-99 by default).
PICTURE_SEEDS, CHECK_PICTURE_SEEDS = 1_000_000_000, 2_000_000_000


@dataclasses.dataclass(frozen=True)
class EncoderSettings:
    """What decides the encoder's weights; stored in the state file and fixed for a run."""

    space: str = "w+"
    batch: int = 32  # samples per step (from the pool), all in the latent loss
    render_batch: int = 2  # of which rendered again from the guess (the costly part of a step)
    pool: int = 512  # the most recent samples, which steps pick from
    fresh: int = 4  # samples rendered into the pool per step
    lr: float = 1e-3  # Adam's peak rate; a cosine takes it to 5% by the last step
    # Both losses start near 1; weighted equally, the reconstruction's pull through the generator
    # drove the guesses away from W (latent loss 1.0 -> 1.06 in 140 steps where alone it fell).
    reconstruction_weight: float = 0.1
    style_mixing: float = 0.5  # share of W+ training latents whose rows come from two w
    # Renders of the procedural renderer (the built-in model's training pictures, crisper than its
    # samples) per step, reconstructed through the generator: the pictures a projection is given.
    pictures: int = 0
    picture_weight: float = 1.0
    seed: int = 0


@dataclasses.dataclass
class EncoderRun:
    """How one invocation runs; free to change between resumed invocations."""

    output: Path  # the encoder file written at the end
    run_dir: Path
    steps: int = 1000  # total steps of the run, this invocation's and earlier ones'
    minutes: float | None = None  # stop this invocation after this much wall time
    resume: bool = True
    checkpoint_minutes: float = 2.0
    log_seconds: float = 30.0
    threads: int = 1  # torch CPU threads


class EncoderTrainer:
    """The encoder, its optimiser and random stream, and one step."""

    def __init__(self, generator: GeneratorBase, generator_hash: str, settings: EncoderSettings):
        self.generator = generator.eval().requires_grad_(False)
        self.generator_hash = generator_hash
        self.settings = settings
        self.device = generator.w_avg.device
        torch.manual_seed(settings.seed)
        self.encoder = new_encoder(generator, settings.space).to(self.device)
        self.optimiser = torch.optim.Adam(self.encoder.parameters(), lr=settings.lr)
        self.distance = PerceptualDistance()  # the projection's: pixels at three scales, edges weighted
        self.rng = torch.Generator().manual_seed(settings.seed)
        self.pool: tuple[torch.Tensor, torch.Tensor] | None = None  # (images, ws), rendered on demand
        self.samples_drawn = 0
        self.pictures_drawn = 0
        self.step = 0
        self.images_seen = 0
        self.train_seconds = 0.0
        self.started = utc_now()
        self.sessions: list[dict[str, Any]] = []
        self.card: dict[str, Any] = {}  # the model card, once the encoder is written

    @torch.no_grad()
    def samples(self, indices: range, stream: int, mixing: float) -> tuple[torch.Tensor, torch.Tensor]:
        """(images (N, 3, H, W), ws (N, num_ws, w_dim)): the samples ``indices`` of a stream, each
        drawn from a seed of its own, so any of them can be drawn again (a resumed pool)."""
        g = self.generator
        z, classes, cutoffs = [], [], []
        for index in indices:
            rng = torch.Generator().manual_seed(stream * 2**40 + self.settings.seed * 2**32 + index)
            z.append(torch.randn(2, g.z_dim, generator=rng))
            classes.append(int(torch.randint(0, max(g.c_dim, 1), (), generator=rng)))
            mixed = mixing and float(torch.rand((), generator=rng)) < mixing
            cutoffs.append(int(torch.randint(1, g.num_ws, (), generator=rng)) if mixed else g.num_ws)
        labels = _labels(g, torch.tensor(classes).repeat_interleave(2))
        pairs = g.mapping(torch.cat(z).to(self.device), labels).view(len(z), 2, g.num_ws, g.w_dim)
        rows = torch.arange(g.num_ws, device=self.device)
        second = rows[None, :] >= torch.tensor(cutoffs, device=self.device)[:, None]  # (N, num_ws)
        ws = torch.where(second[..., None], pairs[:, 1], pairs[:, 0])
        return g.synthesize(ws, noise_mode="const").image, ws

    def _refill(self, first: int, last: int) -> None:
        """Render samples ``first`` to ``last - 1`` of the training stream into their pool slots."""
        s = self.settings
        mixing = s.style_mixing if s.space == "w+" else 0.0
        if self.pool is None:
            g = self.generator
            self.pool = (torch.zeros(s.pool, 3, g.img_height, g.img_width, device=self.device),
                         torch.zeros(s.pool, g.num_ws, g.w_dim, device=self.device))
        for chunk in _on_grid(first, last, max(s.fresh, 1)):  # fresh 0: the pool is never refreshed
            images, ws = self.samples(chunk, TRAINING_STREAM, mixing)
            slots = torch.tensor([index % s.pool for index in chunk])
            self.pool[0][slots], self.pool[1][slots] = images, ws

    def _batch(self) -> tuple[torch.Tensor, torch.Tensor]:
        s = self.settings
        add_fresh = True
        if self.pool is None:  # a new run fills it; a resumed one draws again what it held
            held_until = max(self.samples_drawn, s.pool)
            self._refill(held_until - s.pool, held_until)
            add_fresh = self.samples_drawn > 0
            self.samples_drawn = held_until
        if add_fresh:
            self._refill(self.samples_drawn, self.samples_drawn + s.fresh)
            self.samples_drawn += s.fresh
        slots = torch.randint(0, s.pool, (s.batch,), generator=self.rng)
        return self.pool[0][slots], self.pool[1][slots]

    def pictures(self, first: int, count: int) -> torch.Tensor:
        """Procedural renders ``first`` .. ``first + count - 1`` at the generator's size, (N, 3, H,
        W) in [-1, 1]."""
        g = self.generator
        images, _ = portraits.render_batch(range(first, first + count), g.img_height, g.img_width)
        return (torch.from_numpy(images).permute(0, 3, 1, 2).float() / 127.5 - 1).to(self.device)

    def guess_ws(self, images: torch.Tensor) -> torch.Tensor:
        guess = self.encoder(images)
        return guess if guess.ndim == 3 else guess[:, None].expand(-1, self.generator.num_ws, -1)

    def train_step(self, total_steps: int) -> tuple[float, float, float]:
        """One Adam step; returns (latent loss, reconstruction loss of the samples, of the procedural
        renders (0 without them))."""
        s = self.settings
        images, ws = self._batch()
        for group in self.optimiser.param_groups:
            group["lr"] = s.lr * learning_rate_factor(self.step, total_steps)
        self.encoder.train()
        guess = self.guess_ws(images)
        latent = (self.encoder.normalised(guess) - self.encoder.normalised(ws)).square().mean()
        shown = images[:s.render_batch]
        renders = self.generator.synthesize(guess[:s.render_batch], noise_mode="const").image
        reconstruction = self.distance.against(shown)(renders).mean()
        loss = latent + s.reconstruction_weight * reconstruction
        pictures_loss = torch.zeros(())
        if s.pictures:
            pictures = self.pictures(PICTURE_SEEDS + self.pictures_drawn, s.pictures)
            self.pictures_drawn += s.pictures
            rendered = self.generator.synthesize(self.guess_ws(pictures), noise_mode="const").image
            pictures_loss = self.distance.against(pictures)(rendered) / s.pictures
            loss = loss + s.picture_weight * pictures_loss
        self.optimiser.zero_grad(set_to_none=True)
        loss.backward()
        self.optimiser.step()
        self.step += 1
        self.images_seen += s.batch
        return float(latent.detach()), float(reconstruction.detach()), float(pictures_loss.detach())

    @torch.no_grad()
    def check(self) -> dict[str, float]:
        """Figures on ``CHECK_SAMPLES`` samples of a stream of their own: mean PSNR of the render of
        the encoder's guess, and of ``w_avg``'s render, against each sample; the latent error; with
        ``pictures``, the mean PSNR of the guesses' renders of as many procedural renders."""
        g = self.generator
        self.encoder.eval()
        middle = g.synthesize(g.w_avg.expand(1, g.num_ws, -1), noise_mode="const").image
        guessed, average, latent = [], [], []
        for start in range(0, CHECK_SAMPLES, 8):
            images, ws = self.samples(range(start, start + 8), CHECK_STREAM, 0.0)
            guess = self.guess_ws(images)
            renders = g.synthesize(guess, noise_mode="const").image
            for image, render in zip(images, renders):
                guessed.append(psnr(render[None], image[None]))
                average.append(psnr(middle, image[None]))
            latent.append((self.encoder.normalised(guess) - self.encoder.normalised(ws)).square().mean().item())
        figures = {"samples": CHECK_SAMPLES, "psnr_db": round(sum(guessed) / len(guessed), 2),
                   "psnr_db_w_avg": round(sum(average) / len(average), 2),
                   "latent_error": round(sum(latent) / len(latent), 4)}
        if self.settings.pictures:
            pictures = self.pictures(CHECK_PICTURE_SEEDS, CHECK_SAMPLES)
            renders = g.synthesize(self.guess_ws(pictures), noise_mode="const").image
            figures["psnr_db_pictures"] = round(sum(
                psnr(render[None], picture[None]) for render, picture in zip(renders, pictures)) / CHECK_SAMPLES, 2)
        return figures

    def state_dict(self) -> dict[str, Any]:
        return dict(version=STATE_VERSION, settings=dataclasses.asdict(self.settings),
                    generator_hash=self.generator_hash, encoder=self.encoder.state_dict(),
                    optimiser=self.optimiser.state_dict(), step=self.step,
                    samples_drawn=self.samples_drawn, pictures_drawn=self.pictures_drawn,
                    images_seen=self.images_seen, train_seconds=self.train_seconds,
                    started=self.started, sessions=self.sessions, rng=self.rng.get_state())

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.encoder.load_state_dict(state["encoder"])
        self.optimiser.load_state_dict(state["optimiser"])
        self.step, self.images_seen = state["step"], state["images_seen"]
        self.samples_drawn, self.pictures_drawn = state["samples_drawn"], state["pictures_drawn"]
        self.train_seconds, self.started = state["train_seconds"], state["started"]
        self.sessions = list(state["sessions"])
        self.rng.set_state(state["rng"])


def _on_grid(first: int, last: int, size: int) -> Iterator[range]:
    """``first`` .. ``last - 1`` in runs that end at multiples of ``size``.

    A sample is then drawn in the same batch however the range around it was asked for (a
    resumed run refills its whole pool at once, the first run drew it ``fresh`` at a time), and a
    matrix product's rounding depends on its batch: the resumed pool holds the first run's bytes.
    """
    start = first
    while start < last:
        end = min((start // size + 1) * size, last)
        yield range(start, end)
        start = end


def _labels(generator: GeneratorBase, classes: torch.Tensor) -> torch.Tensor | None:
    if not generator.c_dim:
        return None
    return torch.nn.functional.one_hot(classes, generator.c_dim).float().to(generator.w_avg.device)


def learning_rate_factor(step: int, total: int) -> float:
    """A short linear warm-up (2% of the steps), then a cosine down to 5% at ``total``."""
    warm = max(1, round(0.02 * total))
    if step < warm:
        return (step + 1) / warm
    t = min(1.0, (step - warm) / max(1, total - warm))
    return 0.05 + 0.95 * 0.5 * (1 + math.cos(math.pi * t))


# ---- the run ---------------------------------------------------------------------------------------

def train_encoder(generator: GeneratorBase, generator_hash: str, settings: EncoderSettings,
                  run: EncoderRun, checkpoint: str = "") -> EncoderTrainer:
    """Train until ``run.steps`` (in total), ``run.minutes`` (this invocation) or a signal; save the
    state; at ``run.steps`` also write the encoder and its model card to ``run.output``."""
    threads = torch.get_num_threads()
    torch.set_num_threads(run.threads)
    try:
        return _train(generator, generator_hash, settings, run, checkpoint)
    finally:
        torch.set_num_threads(threads)


def _train(generator: GeneratorBase, generator_hash: str, settings: EncoderSettings,
           run: EncoderRun, checkpoint: str) -> EncoderTrainer:
    trainer = _load_or_create(generator, generator_hash, settings, run)
    trainer.sessions.append(dict(
        started=utc_now(), steps_at_start=trainer.step,
        hardware=describe_hardware(trainer.device, RunOptions(threads=run.threads, data_workers=0))))
    stop = StopFlag()
    previous = {sig: signal.signal(sig, stop) for sig in (signal.SIGTERM, signal.SIGINT)}
    start = last_save = last_log = time.monotonic()
    window: list[tuple[float, float, float]] = []
    try:
        while trainer.step < run.steps and stop.signal is None:
            if run.minutes is not None and time.monotonic() - start >= run.minutes * 60:
                break
            if time.monotonic() - last_save >= run.checkpoint_minutes * 60:
                save_state(trainer, run.run_dir)
                last_save = time.monotonic()
            step_start = time.monotonic()
            window.append(trainer.train_step(run.steps))
            trainer.train_seconds += time.monotonic() - step_start
            if not all(math.isfinite(value) for value in window[-1]):
                raise TrainingError(f"losses are not finite at step {trainer.step}; state kept at "
                                    f"the last save in {run.run_dir}")
            if time.monotonic() - last_log >= run.log_seconds or trainer.step == run.steps:
                _log_progress(trainer, run.steps, window, time.monotonic() - last_log)
                window, last_log = [], time.monotonic()
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    trainer.sessions[-1].update(ended=utc_now(), steps_at_end=trainer.step)
    save_state(trainer, run.run_dir)
    if trainer.step >= run.steps:
        write_encoder(trainer, run.output, checkpoint)
        log.info("finished at step %d; encoder written to %s", trainer.step, run.output)
    else:
        log.info("stopped at step %d of %d; state saved in %s (run the command again to go on)",
                 trainer.step, run.steps, run.run_dir)
    return trainer


def _log_progress(trainer: EncoderTrainer, total: int, window: list[tuple[float, float, float]],
                  seconds: float) -> None:
    latent, samples, pictures = (sum(w[i] for w in window) / max(len(window), 1) for i in range(3))
    rate = len(window) * trainer.settings.batch / max(seconds, 1e-9)
    log.info("step %d/%d  latent loss %.4f  reconstruction loss: samples %.4f, pictures %.4f  "
             "%.1f images/s", trainer.step, total, latent, samples, pictures, rate)


def _load_or_create(generator: GeneratorBase, generator_hash: str, settings: EncoderSettings,
                    run: EncoderRun) -> EncoderTrainer:
    path = run.run_dir / STATE_FILE
    if not (run.resume and path.exists()):
        return EncoderTrainer(generator, generator_hash, settings)
    try:
        state = torch.load(path, map_location="cpu", weights_only=False)
    except Exception as error:  # a damaged file must end as a one-line message
        raise TrainingError(f"{path}: cannot read the encoder's training state ({error})") from None
    if not isinstance(state, dict) or state.get("version") != STATE_VERSION or "encoder" not in state:
        raise TrainingError(f"{path}: not an encoder training state (version {STATE_VERSION} expected)")
    if state["generator_hash"] != generator_hash:
        raise TrainingError(f"{path}: a run for another generator; give another --run-dir, or "
                            "--no-resume to start over there")
    stored = EncoderSettings(**state["settings"])
    if stored != settings:
        log.warning("continuing with the run's own settings (%s)", _difference(stored, settings))
    trainer = EncoderTrainer(generator, generator_hash, stored)
    trainer.load_state_dict(state)
    log.info("resumed %s at step %d", path, trainer.step)
    return trainer


def _difference(stored: EncoderSettings, wanted: EncoderSettings) -> str:
    return ", ".join(f"{f.name} {getattr(stored, f.name)}, not {getattr(wanted, f.name)}"
                     for f in dataclasses.fields(stored) if getattr(stored, f.name) != getattr(wanted, f.name))


def save_state(trainer: EncoderTrainer, run_dir: Path) -> Path:
    run_dir.mkdir(parents=True, exist_ok=True)
    buffer = io.BytesIO()
    torch.save(trainer.state_dict(), buffer)
    path = run_dir / STATE_FILE
    with atomic_write(path) as handle:
        handle.write(buffer.getbuffer())
    return path


def write_encoder(trainer: EncoderTrainer, path: Path, checkpoint: str = "") -> dict[str, Any]:
    """The encoder file and its model card, with the figures of ``EncoderTrainer.check``."""
    encoder: Encoder = trainer.encoder
    card = dict(
        description="ganinterface encoder: guesses the latent of a picture, so that projection "
                    "starts near the answer",
        generator=checkpoint, space=encoder.space,
        picture_size=[encoder.img_width, encoder.img_height], latent_shape=[
            encoder.num_ws, encoder.w_dim] if encoder.space == "w+" else [encoder.w_dim],
        parameters=sum(p.numel() for p in encoder.parameters()),
        steps=trainer.step, images_seen=trainer.images_seen, samples_rendered=trainer.samples_drawn,
        pictures_seen=trainer.pictures_drawn,
        training_seconds=round(trainer.train_seconds),
        settings=dataclasses.asdict(trainer.settings),
        check=trainer.check(), sessions=trainer.sessions,
        started=trainer.started, date=utc_now())
    path.parent.mkdir(parents=True, exist_ok=True)
    save_encoder(encoder.cpu(), path, trainer.generator_hash, card)
    encoder.to(trainer.device)
    trainer.card = card
    return card

