"""What a run shows and ships: the sample sheet, the model card, and the exported generator (G_ema
as a native checkpoint) with its discriminator beside it."""

from __future__ import annotations

import copy
import dataclasses
import logging
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ganinterface.atomic import atomic_write_bytes
from ganinterface.demo.training.data import tensor_to_images
from ganinterface.demo.training.settings import RunOptions, TrainingError
from ganinterface.demo.training.trainer import AUX_LABELS, Trainer, utc_now
from ganinterface.export.images import contact_sheet, save_png
from ganinterface.models.discriminator import discriminator_path

log = logging.getLogger(__name__)

TRAINED_BY = "ganinterface.demo.training"


def write_outputs(trainer: Trainer, options: RunOptions) -> None:
    """The sample sheet (and its copy in ``samples/``), and the export with a kept copy of it."""
    sheet = sample_sheet(trainer)
    save_png(options.run_dir / "samples.png", sheet, scale=2)
    history = options.run_dir / "samples"
    history.mkdir(exist_ok=True)
    kimg_name = f"{trainer.images_seen // 1000:06d}kimg"
    save_png(history / f"{kimg_name}.png", sheet)
    if options.export_path is None:
        return
    try:
        export_checkpoint(trainer, options.export_path)
        # GANs can collapse late: keep every export, so an earlier, better one can still be shipped
        _keep_copy(options.export_path,
                   options.run_dir / "exports" / f"{options.export_path.stem}-{kimg_name}.safetensors")
    except (OSError, ValueError, RuntimeError, ImportError) as error:
        # hours of training must not end because one export could not be written; the next try may work
        log.error("could not export to %s: %s", options.export_path, error)
        return
    log.info("exported G_ema (%d images) to %s", trainer.images_seen, options.export_path)


@torch.no_grad()
def sample_sheet(trainer: Trainer, count: int = 32, columns: int = 8) -> np.ndarray:
    """G_ema on fixed latents (seeds 0..count-1, psi 1) above a row of training renders."""
    settings = trainer.settings
    z = torch.from_numpy(np.concatenate(
        [np.random.RandomState(seed).randn(1, settings.z_dim) for seed in range(count)]))
    ws = trainer.G_ema.mapping(z.float().to(trainer.device), None)
    fakes = tensor_to_images(trainer.G_ema.synthesize(ws, noise_mode="const").image)
    render = getattr(trainer.data_source, "render", trainer.data_source)  # not through a prefetch queue
    reals, _ = render(range(columns), settings.img_height, settings.img_width)
    return contact_sheet(list(fakes) + list(reals), columns=columns)


def export_checkpoint(trainer: Trainer, path: Path) -> None:
    """G_ema as a native checkpoint with its model card, and D beside it (``discriminator_path``)."""
    from ganinterface.models.native import save_native

    trainer.note_session_end()
    generator = copy.deepcopy(trainer.G_ema).cpu().to(memory_format=torch.contiguous_format).eval()
    for name, tensor in list(generator.state_dict().items()):
        if not tensor.is_contiguous():  # safetensors stores contiguous tensors only
            raise TrainingError(f"internal: {name} is not contiguous after conversion")
    path.parent.mkdir(parents=True, exist_ok=True)
    save_native(generator, path, provenance=dict(trained_by=TRAINED_BY),
                model_card=model_card(trainer))
    _export_discriminator(trainer, discriminator_path(path))


def _export_discriminator(trainer: Trainer, path: Path) -> None:
    """D's weights, so a later warm start (``--init-from``) continues against a trained D."""
    from safetensors.torch import save

    weights = {k: v.detach().to("cpu", memory_format=torch.contiguous_format).contiguous()
               for k, v in trainer.D.state_dict().items()}
    atomic_write_bytes(path, save(weights, metadata={"trained_by": TRAINED_BY,
                                                     "images_seen": str(trainer.images_seen)}))


def _keep_copy(weights: Path, copy_path: Path) -> None:
    """Copy a native checkpoint (weights and JSON sidecar) instead of serialising it again."""
    from ganinterface.models.native import sidecar_path

    copy_path.parent.mkdir(parents=True, exist_ok=True)
    for source, target in ((weights, copy_path), (sidecar_path(weights), sidecar_path(copy_path)),
                           (discriminator_path(weights), discriminator_path(copy_path))):
        if source.exists():
            atomic_write_bytes(target, source.read_bytes(), durable=False)


def model_card(trainer: Trainer) -> dict[str, Any]:
    s = trainer.settings
    return dict(
        name="portraits-128x64",
        description="StyleGAN2 generator trained by ganinterface on its own procedural anime "
                    "portraits (ganinterface.demo.portraits); attributes of the training images "
                    "are known, see the quality report in docs/.",
        architecture=f"StyleGAN2 (skip generator, noise, {s.mapping_layers}-layer mapping, "
                     f"z {s.z_dim}, w {s.w_dim}, channels min({s.g_channel_base}/res, "
                     f"{s.g_channel_max})), {s.img_width} × {s.img_height} px",
        generator_parameters=sum(p.numel() for p in trainer.G.parameters()),
        discriminator=f"residual, {sum(p.numel() for p in trainer.D.parameters())} parameters",
        images_seen=trainer.images_seen,
        steps=trainer.step,
        training_seconds=round(trainer.train_seconds),
        images_per_second=round(trainer.images_seen / max(trainer.train_seconds, 1e-9), 2),
        hardware=_hardware(trainer.sessions),
        sessions=trainer.sessions,
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
        started=trainer.started,
        date=utc_now(),
    )


def _hardware(sessions: list[dict[str, Any]]) -> str:
    """Where the run trained, session by session (older sessions did not record it: the CPU)."""
    seen = []
    for session in sessions:
        where = session.get("hardware") or "CPU"
        if where not in seen:
            seen.append(where)
    return "; then ".join(seen) if seen else "CPU"
