"""A run on disk: the state file it resumes from (written atomically), and the warm start from an
exported generator and the discriminator exported beside it.

Everything the run depends on -- networks, optimisers, step, images seen, position in the data
stream and every random state -- is in ``RUN_DIR/state.pt``; a resumed CPU run (same number of
workers and threads) continues bit for bit as if it had never stopped.
"""

from __future__ import annotations

import dataclasses
import io
import json
import logging
from pathlib import Path
from typing import Any

import torch

from ganinterface.atomic import atomic_write
from ganinterface.demo.training.data import DataSource
from ganinterface.models.discriminator import discriminator_path
from ganinterface.demo.training.settings import (RunOptions, TrainingError, TrainSettings,
                                                 continued_settings)
from ganinterface.demo.training.trainer import Trainer

log = logging.getLogger(__name__)

STATE_FILE = "state.pt"
STATE_VERSION = 1


def save_state(trainer: Trainer, run_dir: Path) -> Path:
    """Write the full state to ``run_dir/state.pt`` atomically (never a half-written file)."""
    run_dir.mkdir(parents=True, exist_ok=True)
    trainer.note_session_end()
    buffer = io.BytesIO()
    torch.save(dict(version=STATE_VERSION, **trainer.state_dict()), buffer)
    path = run_dir / STATE_FILE
    with atomic_write(path) as handle:
        handle.write(buffer.getbuffer())
    return path


def load_or_create(settings: TrainSettings, options: RunOptions,
                   data_source: DataSource | None = None, quiet: bool = False,
                   device: torch.device | str = "cpu") -> Trainer:
    """The run in ``options.run_dir`` if there is one to resume, else a warm start from
    ``options.init_from``, else a new run of ``settings``."""
    state_path = options.run_dir / STATE_FILE
    if options.resume and state_path.exists():
        return _resumed(state_path, settings, options, data_source, quiet, device)
    if options.init_from is None:
        return Trainer(settings, data_source, device)
    card = exported_card(options.init_from)
    known = {f.name for f in dataclasses.fields(TrainSettings)}
    stored = {k: v for k, v in (card.get("settings") or {}).items() if k in known}
    if stored:  # continue the exported run as it was trained, unless --retune says otherwise
        settings = continued_settings(TrainSettings(**stored), settings, options, quiet)
    trainer = Trainer(settings, data_source, device)
    warm_start(trainer, options.init_from, card, round(options.d_warmup_kimg * 1000))
    if not quiet:
        log.info("warm start from %s at %.1f kimg: %s", options.init_from,
                 trainer.images_seen / 1000, trainer.session_note["warm_start"])
        if trainer.d_warmup_left:
            log.warning("without the run's own discriminator the generator loses quality at first "
                        "(see the README); compare samples.png with the export before shipping")
    return trainer


def _resumed(state_path: Path, settings: TrainSettings, options: RunOptions,
             data_source: DataSource | None, quiet: bool, device: torch.device | str) -> Trainer:
    try:
        state = torch.load(state_path, map_location="cpu", weights_only=False)
    except Exception as error:  # a damaged file must end as a one-line message
        raise TrainingError(f"{state_path}: cannot read training state ({error})") from None
    if not isinstance(state, dict) or state.get("version") != STATE_VERSION:
        raise TrainingError(f"{state_path}: not a ganinterface training state "
                            f"(version {STATE_VERSION} expected)")
    stored = continued_settings(TrainSettings(**state["settings"]), settings, options, quiet)
    if options.init_from is not None and not quiet:
        log.warning("resuming %s, so --init-from %s is ignored", state_path, options.init_from)
    trainer = Trainer(stored, data_source, device)
    trainer.load_state_dict(state)
    if not quiet:
        log.info("resumed %s at step %d, %.1f kimg", state_path, trainer.step,
                 trainer.images_seen / 1000)
    return trainer


def exported_card(path: Path) -> dict[str, Any]:
    """The model card exported with a generator (empty if it has none)."""
    from ganinterface.models.native import sidecar_path

    try:
        card = json.loads(sidecar_path(path).read_text()).get("model_card")
    except (OSError, ValueError, AttributeError) as error:
        raise TrainingError(f"{path}: cannot read its JSON description ({error})") from None
    return card if isinstance(card, dict) else {}


def warm_start(trainer: Trainer, path: Path, card: dict[str, Any], d_warmup_images: int) -> None:
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
    _load_weights(trainer.G, source.state_dict(), path, "generator")
    _load_weights(trainer.G_ema, source.state_dict(), path, "generator")
    trainer.images_seen = trainer.data_position = int(card.get("images_seen", 0))  # new images next
    trainer.step = int(card.get("steps", 0))
    trainer.train_seconds = float(card.get("training_seconds", 0.0))
    trainer.started = card.get("started", trainer.started)
    trainer.sessions = list(card.get("sessions", []))
    d_path = discriminator_path(path)
    if d_path.exists():
        from safetensors.torch import load_file

        try:
            weights = load_file(d_path)
        except Exception as error:  # safetensors' own errors subclass nothing more specific
            raise TrainingError(f"{d_path}: cannot read discriminator ({error})") from None
        _load_weights(trainer.D, weights, d_path, "discriminator")
        trainer.session_note = {"warm_start": f"{path.name} with its discriminator"}
    else:
        trainer.d_warmup_left = d_warmup_images
        trainer.session_note = {"warm_start": f"{path.name}; no discriminator beside it, so D "
                                              f"trained alone on {d_warmup_images} images first"}


def _load_weights(module: torch.nn.Module, weights: dict[str, torch.Tensor], path: Path,
                  what: str) -> None:
    try:
        module.load_state_dict(weights)
    except RuntimeError as error:
        raise TrainingError(f"{path}: does not fit the {what} being trained "
                            f"({str(error).splitlines()[0]})") from None
