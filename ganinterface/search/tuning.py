"""Rendering a recipe on all tuning samples at once: what makes a search trial cheap."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch

from ganinterface.engine import kinds
from ganinterface.engine.analysis import follow_anchor
from ganinterface.engine.kinds.base import Placement, digest
from ganinterface.engine.latents import z_from_seed
from ganinterface.engine.keep_rest import kept_rest, rest_weights
from ganinterface.engine.masks import rasterize, rasterize_layer
from ganinterface.engine.pixels import to_uint8_image
from ganinterface.engine.scene import Anchor, Mask, Recipe
from ganinterface.models.base import GeneratorBase, LayerInfo
from ganinterface.search.metrics import dilate
from ganinterface.search.placement import LOCALITY_DILATION, placed_masks
from ganinterface.search.samples import Samples


class TuningRenderer:
    """A recipe rendered on every tuning sample in a few batched forwards, through the edit kinds'
    own code (``kinds.edited_ws``, ``kinds.layer_hooks``) applied to a batch of samples at once, so
    a search trial costs a fraction of rendering the seeds one scene at a time.  Where the recipe
    leaves ws alone, anchors read the features the samples were drawn with, and where each mask
    lands is remembered across trials.  It is the kinds' context for all the samples as drawn;
    ``_TuningBatch`` for a batch of them, with the recipe's ws."""

    def __init__(self, generator: GeneratorBase, tuning: Samples, batch: int = 32):
        self.generator, self.tuning, self.batch = generator, tuning, batch
        self.device = next(generator.parameters()).device
        self._placed_masks: dict[tuple[Mask, Anchor | None], list[Mask]] = {}
        self._placements: dict[tuple[Mask, Anchor | None, int], Placement] = {}
        self._other_ws: dict[int, torch.Tensor] = {}
        self._other_features: dict[str, torch.Tensor] = {}

    def _placed(self, mask: Mask, anchor: Anchor | None) -> list[Mask]:
        """``placed_masks`` of the tuning samples, remembered: trials reuse a few placements."""
        key = (mask, anchor)
        if key not in self._placed_masks:
            self._placed_masks[key] = placed_masks(self.tuning, mask, anchor)
        return self._placed_masks[key]

    def placement(self, mask: Mask, anchor: Anchor | None, layer: int) -> Placement:
        """Where ``mask`` lands at ``layer`` on every tuning sample as drawn (unedited ws)."""
        key = (mask, anchor, layer)
        if key not in self._placements:
            masks = self._placed(mask, anchor)
            self._placements[key] = Placement(masks, _rasters(masks, self.generator.layers[layer]))
        return self._placements[key]

    def other_ws(self, seed: int) -> torch.Tensor:
        """Another seed's ws, mapped as the renderer maps a scene's seed (no class, no truncation)."""
        if seed not in self._other_ws:
            z = torch.from_numpy(z_from_seed(seed, self.generator.z_dim)).to(self.device)
            self._other_ws[seed] = self.generator.mapping(z, None, truncation_psi=1.0)[0]
        return self._other_ws[seed]

    def features_of(self, ws: torch.Tensor, layer: int) -> tuple[torch.Tensor, str]:
        key = digest("tuning", ws.detach().cpu().numpy(), layer)
        if key not in self._other_features:
            name = self.generator.layers[layer].name
            out = self.generator.synthesize(ws[None], stop=layer + 1, taps=[name], noise_mode="const")
            self._other_features[key] = out.taps[name]
        return self._other_features[key], key

    def regions(self, placements: Sequence[tuple[Mask, Anchor | None]]) -> list[np.ndarray]:
        """``scoring_regions`` of the tuning samples, from the features they were drawn with."""
        height, width = self.tuning.images.shape[1:3]
        covered = np.zeros((len(self.tuning.seeds), height, width), dtype=bool)
        for mask, anchor in placements:
            for i, placed in enumerate(self._placed(mask, anchor)):
                covered[i] |= rasterize(placed, height, width) > 0
        return [dilate(c, LOCALITY_DILATION) for c in covered]

    def images(self, recipe: Recipe) -> np.ndarray:
        """(N, H, W, 3) uint8: the recipe on every tuning sample, as the renderer draws it."""
        return np.stack([to_uint8_image(raw) for raw in self._raw_images(recipe.edits)])

    @torch.no_grad()
    def _raw_images(self, edits: Sequence[kinds.Edit]) -> torch.Tensor:
        """(N, 3, H, W) float32 on the host: the raw renders of ``edits`` on every tuning sample;
        those that keep the rest blended into the render without them, as the renderer does."""
        drawn = torch.from_numpy(self.tuning.ws).to(self.device)
        ws = kinds.edited_ws(drawn, edits, self)
        ws_edited = not torch.equal(ws, drawn)
        raws, placed = [], []  # placed: each sample's masks of the edits that keep the rest
        for start in range(0, len(self.tuning.seeds), self.batch):
            rows = slice(start, start + self.batch)
            batch = _TuningBatch(self, rows, ws[rows], ws_edited)
            placed.extend(kinds.rest_masks(edits, batch))
            hooks = kinds.layer_hooks(edits, batch)
            offsets = kinds.style_offsets(edits, batch)
            out = self.generator.synthesize(
                ws[rows], hooks={self.generator.layers[k].name: h.apply for k, h in hooks.items()},
                noise_mode="const",
                style_offsets={name: torch.from_numpy(o).to(self.device) for name, o in offsets.items()})
            raws.append(out.image.to(torch.float32).cpu())
        raw = torch.cat(raws)
        if not placed:
            return raw
        rest = self._raw_images(kinds.without_rest_kept(edits))
        height, width = raw.shape[2:]
        return torch.stack([kept_rest(r, e, torch.from_numpy(rest_weights(masks, height, width))[None])
                            for r, e, masks in zip(rest, raw, placed)])


class _TuningBatch:
    """What the edit kinds ask while they apply a recipe to some rows of the tuning samples."""

    def __init__(self, tuner: TuningRenderer, rows: slice, ws: torch.Tensor, ws_edited: bool):
        self.generator, self.device = tuner.generator, tuner.device
        self._tuner, self._rows, self._ws, self._ws_edited = tuner, rows, ws, ws_edited

    def other_ws(self, seed: int) -> torch.Tensor:
        return self._tuner.other_ws(seed)

    def features_of(self, ws: torch.Tensor, layer: int) -> tuple[torch.Tensor, str]:
        return self._tuner.features_of(ws, layer)

    def placement(self, mask: Mask, anchor: Anchor | None, layer: int) -> Placement:
        if anchor is None or not self._ws_edited:
            whole = self._tuner.placement(mask, anchor, layer)
            return Placement(whole.masks[self._rows], whole.rasters[self._rows])
        # the recipe moved ws: its anchors read the features of the moved ws
        k = self.generator.layer_index(anchor.layer)
        out = self.generator.synthesize(self._ws, stop=k + 1, taps=[anchor.layer], noise_mode="const")
        masks = [follow_anchor(mask, anchor, features, self.generator.layers[k])
                 for features in out.taps[anchor.layer].float().cpu().numpy()]
        return Placement(masks, _rasters(masks, self.generator.layers[layer]))


def _rasters(masks: Sequence[Mask], info: LayerInfo) -> np.ndarray:
    """(N, h, w): each placed mask at the layer, its margin kept clear."""
    return np.stack([rasterize_layer(mask, info.height, info.width, info.margin) for mask in masks])
