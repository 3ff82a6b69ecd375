"""What a training run is: the settings that decide the weights, the options of one invocation,
and the rules by which a continued run keeps or retunes its own settings."""

from __future__ import annotations

import dataclasses
import logging
from pathlib import Path
from typing import Any

from ganinterface import bundled

log = logging.getLogger(__name__)

DEFAULT_RUN_DIR = Path("~/.cache/ganinterface/train-portraits").expanduser()
# Training from a checkout replaces the built-in model in place (the editable install's folder).
DEFAULT_EXPORT = bundled.builtin_checkpoint()


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


def continued_settings(stored: TrainSettings, wanted: TrainSettings, options: RunOptions,
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


def _retuned(stored: TrainSettings, wanted: TrainSettings, named: set[str] | frozenset[str],
             quiet: bool) -> TrainSettings:
    changes = {name: getattr(wanted, name) for name in RETUNABLE
               if name in named and getattr(wanted, name) != getattr(stored, name)}
    if changes and not quiet:
        log.info("retuning the run: %s", ", ".join(f"{name} {getattr(stored, name)} -> {value}"
                                                  for name, value in changes.items()))
    return dataclasses.replace(stored, **changes)
