"""The distance from renders to a picture, for projection and the encoder's training; nothing is
downloaded: pixel differences at several scales, the full-size error weighted by the picture's
local contrast, plus LPIPS-style differences of the features of the checkpoint's own
discriminator when asked (``distance_for``) and of an optional user-supplied VGG16/LPIPS network
(``models.perceptual``)."""

from __future__ import annotations

import contextlib
import os
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Protocol

import torch
import torch.nn.functional as F

from ganinterface import bundled
from ganinterface.models.base import CheckpointError, GeneratorBase
from ganinterface.models.discriminator import OtherSizeError, discriminator_path, load_discriminator
from ganinterface.models.loading import load_checkpoint_discriminator
from ganinterface.models.perceptual import load_perceptual_network

Tensor = torch.Tensor
PIXEL_SCALES = 3
# Weight of the full-size squared error weighted by the picture's local contrast (``edge_weights``).
# On 40 + 80 procedural renders never reported, the eyes' colour read as in the picture went from
# 90% / 85% to 97.5% / 97.5%, PSNR 21.9 / 21.7 -> 22.2 / 21.9 dB; 2 gave 98.8% eyes but mouths
# 91% instead of 95% (docs/projection-report.md).
EDGE_WEIGHT = 1.0


class FeatureNetwork(Protocol):
    """A network whose ``features`` of images in [-1, 1] are compared (D, VGG16)."""

    def features(self, images: Tensor) -> list[Tensor]: ...


class PerceptualDistance:
    """Pixel differences at ``pixel_scales`` scales plus LPIPS-style differences of the features of
    ``networks``: each activation unit-normalised along its channels, squared differences summed
    over the channels (weighted by ``channel_weights`` where a network has them, as LPIPS does) and
    averaged over the pixels, then over the layers."""

    def __init__(self, networks: Sequence[FeatureNetwork] = (), *, pixel_scales: int = PIXEL_SCALES,
                 pixel_weight: float = 1.0, feature_weight: float = 0.1, edge_weight: float = EDGE_WEIGHT,
                 names: Sequence[str] = (), notes: Sequence[str] = ()):
        self.networks = list(networks)
        self.pixel_scales = pixel_scales
        self.edge_weight = edge_weight
        self.pixel_weight = pixel_weight
        self.feature_weight = feature_weight
        self.names = list(names)  # the networks, in words
        self.notes = list(notes)  # one line each: a network the checkpoint has but that is not used

    @property
    def description(self) -> str:
        """What is compared, e.g. "pixels at 3 scales, edges weighted + the discriminator in
        ffhq.pkl (...)"."""
        return " + ".join([self.pixels_description, *self.names])

    @property
    def pixels_description(self) -> str:
        """The pixel terms, e.g. "pixels at 3 scales, edges weighted"."""
        return f"pixels at {self.pixel_scales} scales{', edges weighted' if self.edge_weight else ''}"

    def to(self, device: torch.device) -> PerceptualDistance:
        for network in self.networks:
            network.to(device)
        return self

    def against(self, target: Tensor) -> Callable[[Tensor], Tensor]:
        """A function of renders (N, 3, H, W) -> their distance to ``target`` (a scalar, summed over
        N; a target of N pictures pairs them with the renders); the target's features are computed
        once."""
        with torch.no_grad():
            target_features = [[_unit(f) for f in network.features(target)]
                               for network in self.networks]
            edges = self.edge_weight * edge_weights(target) if self.edge_weight else None

        def distance(images: Tensor) -> Tensor:
            total = self.pixel_weight * pixel_distance(images, target, self.pixel_scales)
            if edges is not None:
                total = total + self.pixel_weight * ((images - target).square() * edges).mean(dim=(1, 2, 3))
            for network, targets in zip(self.networks, target_features):
                total = total + self.feature_weight * _feature_distance(network, images, targets)
            return total.sum()

        return distance


def _unit(features: Tensor) -> Tensor:
    return features / (features.square().sum(dim=1, keepdim=True).sqrt() + 1e-10)


def edge_weights(target: Tensor) -> Tensor:
    """(N, 1, H, W): each pixel's local contrast in the picture, in units of its mean over the
    picture: the absolute differences of the channels' mean to the right and below neighbour (0 on
    the last column and row), summed and averaged over 3 x 3.  Small sharp details, such as eyes and
    outlines, then weigh in the distance as much as broad flat areas do."""
    luminance = target.mean(dim=1, keepdim=True)
    across = F.pad((luminance[..., :, 1:] - luminance[..., :, :-1]).abs(), (0, 1))
    down = F.pad((luminance[..., 1:, :] - luminance[..., :-1, :]).abs(), (0, 0, 0, 1))
    contrast = F.avg_pool2d(across + down, 3, stride=1, padding=1)
    return contrast / contrast.mean(dim=(1, 2, 3), keepdim=True).clamp_min(1e-8)


def pixel_distance(images: Tensor, target: Tensor, scales: int) -> Tensor:
    """(N,): each render's mean squared error to ``target`` at ``scales`` scales (each half the
    last, by 2 x 2 averages), summed."""
    total = images.new_zeros(len(images))
    for scale in range(scales):
        if scale:
            images, target = F.avg_pool2d(images, 2), F.avg_pool2d(target, 2)
        total = total + (images - target).square().mean(dim=(1, 2, 3))
    return total


def _feature_distance(network: FeatureNetwork, images: Tensor, targets: list[Tensor]) -> Tensor:
    weights = getattr(network, "channel_weights", None)
    layers = network.features(images)
    total = images.new_zeros(len(images))
    for number, (features, target) in enumerate(zip(layers, targets)):
        difference = (_unit(features) - target).square()
        if weights is not None:
            difference = difference * weights[number][None, :, None, None]
        total = total + difference.sum(dim=1).mean(dim=(1, 2))
    return total / max(len(layers), 1)


def distance_for(checkpoint: str | os.PathLike[str] | None, generator: GeneratorBase, *,
                 discriminator: bool = False,
                 perceptual: str | os.PathLike[str] | None = None) -> PerceptualDistance:
    """The distance to use with the generator loaded from ``checkpoint`` (None: the built-in
    model): pixels at three scales, edges weighted; with ``discriminator``, also the features of its
    discriminator: ``X.discriminator.safetensors`` beside it when there is one (and reads images of
    the generator's size), else the discriminator inside the file (NVlabs pickles, rosinality
    files; one that cannot be used is a note and the search goes on without it); and
    ``perceptual``'s when given.  Raises ``CheckpointError`` for an unreadable file.

    D is not in the default: on the built-in model it made each step 1.7 times as costly and, on 16
    procedural renders at 40 steps, changed the attribute agreement by one picture either way
    (docs/projection-report.md); the steps it costs buy more."""
    networks: list[FeatureNetwork] = []
    names: list[str] = []
    notes: list[str] = []
    weights = bundled.builtin_checkpoint() if checkpoint is None else Path(checkpoint)
    beside = discriminator_path(weights)
    if discriminator and beside.is_file():
        with contextlib.suppress(OtherSizeError):  # e.g. a stand-in for the built-in model
            networks.append(load_discriminator(beside, generator.img_height, generator.img_width))
            names.append(f"the discriminator beside it ({beside.name})")
    elif discriminator and checkpoint is not None:
        try:
            inside = load_checkpoint_discriminator(weights, generator.img_height, generator.img_width)
        except CheckpointError as error:
            notes.append(f"without its discriminator: {error}")
        else:
            if inside is not None:
                networks.append(inside.network)
                names.append(inside.description)
    if perceptual is not None:
        networks.append(load_perceptual_network(perceptual))
        names.append(f"the network in {Path(perceptual).name}")
    return PerceptualDistance(networks, names=names, notes=notes)
