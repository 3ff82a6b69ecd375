"""How big a generator a checkpoint may ask for, checked before a single tensor is allocated.

A checkpoint's configuration is a handful of numbers (resolution, channel counts, layer counts)
that decide how much memory building the network takes. A damaged or hostile file can claim a
2^20-pixel image or 10^12 parameters; the generators check their configuration here first and
refuse it with a ValueError naming the number, which the loaders turn into a ``CheckpointError``.
"""

from __future__ import annotations

import reprlib
from typing import Any

import numpy as np

MAX_RESOLUTION = 4096  # pixels a side; the largest published StyleGAN models are 1024 px
MAX_WIDTH = 65_536  # any one dimension: z_dim, w_dim, channels, features, pixels of margin
MAX_LAYERS = 256  # mapping or synthesis layers (StyleGAN2 and StyleGAN3 use at most 16)
MAX_KERNEL = 64  # convolution kernel and filter taps
# Parameters and buffers together: 4 GB as float32. StyleGAN2 at 1024 px holds about 30 million.
MAX_VALUES = 1_000_000_000
# What building a generator from a damaged configuration raises (a text where a number belongs, a
# number too big for torch, a table that is not a table); the loaders report each as the file's fault.
BAD_CONFIG = (TypeError, ValueError, KeyError, AttributeError, ArithmeticError, RuntimeError)


def whole(name: str, value: Any, low: int = 1, high: int = MAX_WIDTH) -> int:
    """``value`` as an int in [low, high]; anything else (a float, text, a bool) is refused."""
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, (int, np.integer)):
        raise ValueError(f"{name} must be a whole number, got {reprlib.repr(value)}")
    if not low <= value <= high:
        raise ValueError(f"{name} must be between {low} and {high}, got {value}")
    return int(value)


def resolution(name: str, value: Any) -> int:
    return whole(name, value, 1, MAX_RESOLUTION)


def check_values(network: str, values: int) -> None:
    """Refuse a configuration whose parameters and buffers would exceed ``MAX_VALUES``."""
    if values > MAX_VALUES:
        raise ValueError(f"{network} would hold about {values:.2g} parameters and buffers, more "
                         f"than the {MAX_VALUES:.0e} this program builds")


def mapping_values(z_dim: int, c_dim: int, w_dim: int, num_layers: Any,
                   embed_features: Any = None, layer_features: Any = None) -> int:
    """Weights and biases of a mapping network (and its class embedding), its sizes checked."""
    num_layers = whole("mapping num_layers", num_layers, 1, MAX_LAYERS)
    embed = 0 if c_dim == 0 else whole("embed_features", w_dim if embed_features is None else embed_features)
    width = whole("layer_features", w_dim if layer_features is None else layer_features)
    features = [z_dim + embed] + [width] * (num_layers - 1) + [w_dim]
    layers = sum((a + 1) * b for a, b in zip(features, features[1:]))
    return layers + (c_dim + 1) * embed + w_dim
