"""Turning a checkpoint path (or None: the built-in model) into a ready Renderer, off the GUI thread."""

from __future__ import annotations

import dataclasses
import functools
from pathlib import Path
from typing import Any

from ganinterface import bundled
from ganinterface.ui.latent_panel import ModelShape

FALLBACK_NOTE = ("Built-in portrait model not found ({path}): showing a small random-weight "
                 "StyleGAN2 instead, so images are abstract.")


@dataclasses.dataclass(frozen=True)
class LoadedModel:
    renderer: Any  # engine.renderer.Renderer
    shape: ModelShape
    checkpoint: str | None  # what a Scene records: None for the built-in model
    note: str = ""  # shown in the status bar, e.g. the random-weight fallback

    @functools.cached_property
    def hash(self) -> str:
        """sha256 of the weights, which ties recipes, directions and latents to the model they
        were made for; computed once per model."""
        from ganinterface.models.native import generator_hash

        return generator_hash(self.renderer.generator)


def shape_of(generator: Any, name: str) -> ModelShape:
    return ModelShape(name=name, z_dim=generator.z_dim, w_dim=generator.w_dim,
                      num_ws=generator.num_ws, c_dim=generator.c_dim,
                      layers=tuple(generator.layers), height=generator.img_height,
                      width=generator.img_width)


def random_fallback_generator() -> Any:
    """A small StyleGAN2 with fixed random weights, portrait-shaped like the built-in model."""
    import torch

    from ganinterface.models.stylegan2 import StyleGAN2Generator

    with torch.random.fork_rng():
        torch.manual_seed(2024)
        generator = StyleGAN2Generator(z_dim=64, c_dim=0, w_dim=64, img_resolution=64,
                                       img_channels=3, img_width=32,
                                       mapping_kwargs={"num_layers": 2},
                                       channel_base=2048, channel_max=64)
    return generator.eval()


def load_model(path: str | None, device: str | None = None) -> LoadedModel:
    """Load ``path`` (None: the built-in model, or the random fallback if its file is missing) onto
    ``device`` (None: the best there is).

    Raises CheckpointError (one line naming the file) for anything that cannot be loaded.
    """
    from ganinterface.engine.renderer import Renderer
    from ganinterface.models.loading import load_generator

    builtin = bundled.builtin_checkpoint()
    if path is None and not builtin.exists():
        generator = random_fallback_generator()
        note = FALLBACK_NOTE.format(path=builtin.name)
        return LoadedModel(Renderer(generator, device),
                           shape_of(generator, "random StyleGAN2 (fallback)"), None, note)
    generator = load_generator(path)
    name = "built-in portraits" if path is None else Path(path).name
    return LoadedModel(Renderer(generator, device), shape_of(generator, name), path)


def on_cpu(model: LoadedModel) -> LoadedModel:
    """``model`` rendering on the CPU, after its GPU ran out of memory or failed: its generator moved
    there, or loaded again when the failed device cannot hand the weights back."""
    try:
        renderer = model.renderer.on_cpu()
    except RuntimeError:
        renderer = load_model(model.checkpoint, "cpu").renderer
    return dataclasses.replace(model, renderer=renderer)


def shipped_files(model: LoadedModel, kind: str) -> list[Path]:
    """The recipes (``kind="recipes"``, .json) or directions (.npy) shipped with the built-in model."""
    if model.checkpoint is not None or model.note:  # a user's model, or the random fallback
        return []
    return bundled.shipped_recipes() if kind == "recipes" else bundled.shipped_directions()
