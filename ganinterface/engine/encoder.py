"""The encoder: a small CNN that guesses the latent of a picture in one forward pass.

Projection (``engine.projection``) searches for the latent whose render matches a picture; started
from ``w_avg`` it needs many steps.  An encoder trained on the generator's own samples (image, w)
puts the search near the answer at once (``project(..., start_w=encode(encoder, target))``).

Shape: the picture, area-downsampled so its longer side is at most ``WORK_SIDE`` pixels, goes
through 3x3 convolutions, each level a strided one and (but the first) a plain one, down to a grid
of 1/16 the size, a 1x1 convolution that narrows the channels, and one linear layer to a feature vector.  Two
heads read that vector: ``w`` as an offset from ``w_avg`` in units of W's spread per dimension,
and, for space "w+", a residual per style row added to it (its weights start at zero, so a fresh
encoder guesses one w for every row).

File: ``X.encoder.safetensors`` beside the generator ``X.safetensors`` it was trained for, with its
configuration and the generator's hash in the safetensors metadata, and ``X.encoder.json`` beside
it, the model card (space, sizes, training figures).  ``load_encoder`` refuses an encoder made for
another generator in one line naming the file.
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from ganinterface.atomic import atomic_write_bytes, atomic_write_text
from ganinterface.models import limits
from ganinterface.models.base import CheckpointError, GeneratorBase
from ganinterface.models.nvlabs_pkl import first_line

FORMAT = "ganinterface.encoder"
VERSION = 1
SPACES = ("w", "w+")
WORK_SIDE = 128  # the encoder reads pictures at most this many pixels on their longer side
LEAK = 0.2


class Encoder(nn.Module):
    """Pictures (N, 3, H, W) in [-1, 1] at the generator's resolution -> w (N, w_dim), or W+
    (N, num_ws, w_dim) for space "w+"."""

    def __init__(self, *, img_height: int, img_width: int, w_dim: int, num_ws: int,
                 space: str = "w+",
                 channels: tuple[int, ...] = (16, 32, 64, 128),  # per halving of the picture
                 narrow: int = 32,  # channels of the last grid, before it is flattened
                 feature_dim: int = 256):
        super().__init__()
        if space not in SPACES:
            raise ValueError(f"space must be w or w+, got {space!r}")
        self.img_height, self.img_width = img_height, img_width
        self.w_dim, self.num_ws, self.space = w_dim, num_ws, space
        self.channels, self.narrow, self.feature_dim = tuple(channels), narrow, feature_dim
        self.work_size = _work_size(img_height, img_width)
        grid = _grid_size(self.work_size, len(self.channels))
        layers: list[nn.Module] = []
        previous = 3
        for level, width in enumerate(self.channels):
            layers += _conv(previous, width, 2)  # halve first: full-resolution layers cost most
            if level:
                layers += _conv(width, width, 1)
            previous = width
        layers += [nn.Conv2d(previous, narrow, 1), nn.LeakyReLU(LEAK), nn.Flatten()]
        self.body = nn.Sequential(*layers)
        self.embed = nn.Linear(narrow * grid[0] * grid[1], feature_dim)
        self.w_head = nn.Linear(feature_dim, w_dim)
        self.rows_head = nn.Linear(feature_dim, num_ws * w_dim) if space == "w+" else None
        for module in self.modules():
            if isinstance(module, (nn.Conv2d, nn.Linear)):  # He init: the signal keeps its scale
                nn.init.kaiming_normal_(module.weight, LEAK)
                nn.init.zeros_(module.bias)
        nn.init.normal_(self.w_head.weight, std=0.01)
        if self.rows_head is not None:
            nn.init.zeros_(self.rows_head.weight)
        # Where W lies: filled from the generator by ``centre_on`` and saved with the weights.
        self.register_buffer("w_avg", torch.zeros(w_dim))
        self.register_buffer("w_spread", torch.ones(w_dim))

    def config(self) -> dict[str, Any]:
        return {"img_height": self.img_height, "img_width": self.img_width, "w_dim": self.w_dim,
                "num_ws": self.num_ws, "space": self.space, "channels": list(self.channels),
                "narrow": self.narrow, "feature_dim": self.feature_dim}

    @torch.no_grad()
    def centre_on(self, generator: GeneratorBase, samples: int = 4000, seed: int = 123) -> None:
        """Take ``w_avg`` and the spread of W per dimension from the generator's mapped samples."""
        z = torch.randn(samples, generator.z_dim, generator=torch.Generator().manual_seed(seed))
        device = generator.w_avg.device
        w = generator.mapping(z.to(device), _class_labels(generator, samples, device))[:, 0].cpu()
        self.w_avg.copy_(generator.w_avg.detach().cpu())
        self.w_spread.copy_((w - self.w_avg).square().mean(dim=0).sqrt().clamp_min(1e-6))

    def features(self, images: torch.Tensor) -> torch.Tensor:
        if tuple(images.shape[2:]) != self.work_size:
            images = F.interpolate(images, size=self.work_size, mode="area")
        return F.leaky_relu(self.embed(self.body(images)), LEAK)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        features = self.features(images)
        w = self.w_avg + self.w_head(features) * self.w_spread
        if self.rows_head is None:
            return w
        rows = self.rows_head(features).view(-1, self.num_ws, self.w_dim) * self.w_spread
        return w[:, None] + rows

    def normalised(self, ws: torch.Tensor) -> torch.Tensor:
        """Latents in units of W's spread around ``w_avg``: the scale the latent loss compares."""
        return (ws - self.w_avg) / self.w_spread


def _conv(in_channels: int, out_channels: int, stride: int) -> list[nn.Module]:
    return [nn.Conv2d(in_channels, out_channels, 3, stride, 1), nn.LeakyReLU(LEAK)]


def _class_labels(generator: GeneratorBase, count: int, device: torch.device) -> torch.Tensor | None:
    if not generator.c_dim:
        return None
    return F.one_hot(torch.arange(count) % generator.c_dim, generator.c_dim).float().to(device)


def _work_size(height: int, width: int) -> tuple[int, int]:
    scale = min(1.0, WORK_SIDE / max(height, width))
    return max(1, round(height * scale)), max(1, round(width * scale))


def _grid_size(size: tuple[int, int], halvings: int) -> tuple[int, int]:
    height, width = size
    for _ in range(halvings):
        height, width = (height + 1) // 2, (width + 1) // 2
    return height, width


@torch.no_grad()
def encode(encoder: Encoder, image: torch.Tensor) -> torch.Tensor:
    """The encoder's guess for ``image`` (N, 3, H, W) in [-1, 1] at the generator's resolution
    (what ``projection.crop_to_aspect`` makes): (N, w_dim) or (N, num_ws, w_dim)."""
    expected = (3, encoder.img_height, encoder.img_width)
    if image.ndim != 4 or tuple(image.shape[1:]) != expected:
        raise ValueError(f"the encoder reads pictures of shape (N, {expected[0]}, {expected[1]}, "
                         f"{expected[2]}), got {tuple(image.shape)}")
    was_training = encoder.training
    encoder.eval()
    try:
        device = encoder.w_avg.device
        return encoder(image.to(device, torch.float32))
    finally:
        encoder.train(was_training)


def new_encoder(generator: GeneratorBase, space: str = "w+", **sizes: Any) -> Encoder:
    """An untrained encoder for ``generator``, centred on its W."""
    encoder = Encoder(img_height=generator.img_height, img_width=generator.img_width,
                      w_dim=generator.w_dim, num_ws=generator.num_ws, space=space, **sizes)
    encoder.centre_on(generator)
    return encoder


# ---- files -------------------------------------------------------------------------------------

def encoder_path(checkpoint: str | os.PathLike[str]) -> Path:
    """``X.safetensors`` (or ``X.pkl``, ``X.pt``) -> ``X.encoder.safetensors``: the encoder
    trained for the generator in that file."""
    checkpoint = Path(checkpoint)
    return checkpoint.with_name(f"{checkpoint.stem}.encoder.safetensors")


def encoder_beside(checkpoint: str | os.PathLike[str] | None) -> Path:
    """Where the encoder for the generator in ``checkpoint`` (None: the built-in model) lies, if
    one was shipped or trained for it."""
    from ganinterface import bundled

    return encoder_path(bundled.builtin_checkpoint() if checkpoint is None else checkpoint)


def guess_for(checkpoint: str | os.PathLike[str] | None, generator: GeneratorBase,
              encoder_file: str | os.PathLike[str] | None = None,
              generator_hash: str | None = None) -> Callable[[torch.Tensor], torch.Tensor] | None:
    """picture -> starting latent from ``encoder_file``, else from the encoder beside the checkpoint
    (None: the built-in model); None when there is neither.  Raises ``CheckpointError`` for an
    encoder made for another generator."""
    beside = encoder_beside(checkpoint)
    if encoder_file is None and not beside.is_file():
        return None
    encoder = load_encoder(encoder_file or beside, generator, generator_hash)
    return lambda target: encode(encoder, target)


def card_path(path: str | os.PathLike[str]) -> Path:
    """``X.encoder.safetensors`` -> ``X.encoder.json``, its model card."""
    return Path(path).with_suffix(".json")


def save_encoder(encoder: Encoder, path: str | os.PathLike[str], generator_hash: str,
                 model_card: dict[str, Any]) -> None:
    """Weights (half precision: a guess needs no more, and the file stays small) with the
    configuration and the generator's hash in the metadata, then the model card beside them; each
    written atomically."""
    from safetensors.torch import save

    path = Path(path)
    tensors = {name: value.detach().cpu().to(torch.float16).contiguous()
               for name, value in encoder.state_dict().items()}
    # the buffers locate W: kept at full precision
    tensors.update({name: getattr(encoder, name).detach().cpu().float().contiguous()
                    for name in ("w_avg", "w_spread")})
    metadata = {"format": FORMAT, "version": str(VERSION), "config": json.dumps(encoder.config()),
                "generator_hash": generator_hash}
    atomic_write_bytes(path, save(tensors, metadata=metadata))
    card = {"format": FORMAT, "version": VERSION, "generator_hash": generator_hash,
            "config": encoder.config(), "model_card": model_card}
    atomic_write_text(card_path(path), json.dumps(card, indent=2, allow_nan=False) + "\n")


def load_encoder(path: str | os.PathLike[str], generator: GeneratorBase | None = None,
                 generator_hash: str | None = None) -> Encoder:
    """The encoder in ``path`` (eval mode, CPU).  With ``generator`` (and its hash, computed when
    not given) it must have been trained for that generator; anything else is a
    ``CheckpointError``: one line naming the file."""
    from safetensors import SafetensorError
    from safetensors.torch import load_file, safe_open

    path = Path(path)
    try:
        with safe_open(str(path), "pt") as handle:
            metadata = handle.metadata() or {}
        weights = load_file(str(path))
    except FileNotFoundError:
        raise CheckpointError(path, "no such file") from None
    except (OSError, SafetensorError, ValueError) as error:
        raise CheckpointError(path, f"not a safetensors file ({first_line(error)})") from None
    if metadata.get("format") != FORMAT:
        raise CheckpointError(path, f"not a ganinterface encoder (format {metadata.get('format')!r})")
    if metadata.get("version") != str(VERSION):
        raise CheckpointError(path, f"encoder version {metadata.get('version')!r}; this ganinterface "
                                    f"reads version {VERSION}")
    if generator is not None:
        _check_made_for(path, metadata.get("generator_hash", ""), generator, generator_hash)
    encoder = _built(path, metadata.get("config", ""))
    if generator is not None:
        _check_fits(path, encoder, generator)
    try:
        encoder.load_state_dict({name: value.float() for name, value in weights.items()})
    except RuntimeError as error:
        raise CheckpointError(path, f"weights do not fit the encoder they describe "
                                    f"({first_line(error)})") from None
    return encoder.eval()


def _check_made_for(path: Path, made_for: str, generator: GeneratorBase,
                    generator_hash: str | None) -> None:
    from ganinterface.engine.directions import model_hash

    actual = generator_hash or model_hash(generator)
    if made_for != actual:
        raise CheckpointError(path, f"an encoder for another generator (trained for "
                                    f"{made_for[:12] or 'none'}…, this one is {actual[:12]}…); "
                                    "train one with ganinterface train-encoder")


def _built(path: Path, config_text: str) -> Encoder:
    try:
        config = json.loads(config_text)
        checked = dict(
            img_height=limits.resolution("img_height", config["img_height"]),
            img_width=limits.resolution("img_width", config["img_width"]),
            w_dim=limits.whole("w_dim", config["w_dim"]),
            num_ws=limits.whole("num_ws", config["num_ws"], 1, limits.MAX_LAYERS),
            space=config["space"],
            channels=tuple(limits.whole("channels", c, 1, 4096) for c in config["channels"][:8]),
            narrow=limits.whole("narrow", config["narrow"], 1, 4096),
            feature_dim=limits.whole("feature_dim", config["feature_dim"], 1, 65_536))
        if len(config["channels"]) > 8 or not checked["channels"]:
            raise ValueError("channels must list 1 to 8 widths")
        grid = _grid_size(_work_size(checked["img_height"], checked["img_width"]),
                          len(checked["channels"]))
        heads = checked["feature_dim"] * checked["w_dim"] * (1 + checked["num_ws"])
        if checked["narrow"] * math.prod(grid) * checked["feature_dim"] + heads > 100_000_000:
            raise ValueError("its layers would hold more than 100 million weights")
        return Encoder(**checked)
    except (json.JSONDecodeError, RecursionError) as error:
        raise CheckpointError(path, f"its configuration is not valid JSON ({error})") from None
    except (KeyError, TypeError, ValueError, AttributeError) as error:
        raise CheckpointError(path, f"its configuration cannot be used ({first_line(error)})") from None


def _check_fits(path: Path, encoder: Encoder, generator: GeneratorBase) -> None:
    made = (encoder.img_height, encoder.img_width, encoder.num_ws, encoder.w_dim)
    wanted = (generator.img_height, generator.img_width, generator.num_ws, generator.w_dim)
    if made != wanted:
        raise CheckpointError(path, f"encoder for {made[1]} × {made[0]} px pictures and "
                                    f"{made[2]} × {made[3]} latents; this generator makes "
                                    f"{wanted[1]} × {wanted[0]} px from {wanted[2]} × {wanted[3]}")
