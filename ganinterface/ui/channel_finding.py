"""Finding the channels that carry a feature: rank them by a marked region, or propose an edit
from example seeds.  Work on several seeds renders them on a worker thread with its own Renderer."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
from PySide6.QtCore import QObject, Slot
from PySide6.QtWidgets import QLineEdit

from ganinterface.engine import commands as cmd
from ganinterface.engine.scene import Mask, Rect
from ganinterface.engine.scheduler import Outcome
from ganinterface.ui.canvas import Tool
from ganinterface.ui.workers import BackgroundTask


class ChannelFinder(QObject):
    """The feature panel's Rank and Propose buttons, acting on the window's scene and region."""

    def __init__(self, window: Any, force_sync: bool = False) -> None:
        super().__init__(window)
        self.window = window
        self.task = BackgroundTask(lambda job: job(), "ganinterface-analysis", self,
                                   force_sync=force_sync)
        self.task.finished.connect(self._done)

    def shutdown(self) -> None:
        self.task.shutdown()

    def _region_mask(self, height: int, width: int) -> np.ndarray | None:
        """The marked region at a layer's resolution; None (and a hint) if nothing is marked."""
        from ganinterface.engine.masks import rasterize

        if self.window.canvas.region is None:
            self.window.set_tool(Tool.REGION)
            self.window.statusBar().showMessage("First drag a region over the image (Region tool, M)", 6000)
            return None
        return rasterize(Mask((Rect(*self.window.canvas.region),)), height, width)

    def _seeds_field(self, field: QLineEdit, what: str) -> list[int] | None:
        from ganinterface.engine.latents import LatentError, parse_seeds

        try:
            return parse_seeds(field.text()) if field.text().strip() else []
        except LatentError as error:
            self.window._ask.error(what, str(error))
            return None

    def _features_job(self, seeds: list[int], layer: str) -> Callable[[], np.ndarray]:
        """A job rendering ``layer``'s features of ``seeds`` (current settings, no edits), (N, C, h, w).

        It uses a Renderer of its own, so the canvas keeps rendering meanwhile.
        """
        from ganinterface.engine.renderer import Renderer
        from ganinterface.export.jobs import render_or_raise

        generator, device = self.window.model.renderer.generator, self.window.model.renderer.device
        base = self.window.stack.scene.replace(edits=(), w=None)

        def job() -> np.ndarray:
            renderer = Renderer(generator, device)
            return np.stack([render_or_raise(renderer, base.replace(seed=seed), (layer,))
                             .features[layer] for seed in seeds])

        return job

    def rank(self) -> None:
        from ganinterface.engine.analysis import AnalysisError, rank_channels

        features, layer = self.window.features_panel.features(), self.window.features_panel.current_layer()
        seeds = self._seeds_field(self.window.features_panel.rank_seeds, "Rank channels")
        if features is None or seeds is None:
            return
        region = self._region_mask(*features.shape[1:])
        if region is None:
            return
        if not seeds:
            try:
                self.window.features_panel.show_ranking(rank_channels(features, region))
                self.window.statusBar().showMessage(f"Ranked the channels of {layer}", 4000)
            except AnalysisError as error:  # e.g. a region covering the whole layer
                self.window._ask.error("Rank channels", str(error))
            return
        collect = self._features_job(seeds, layer)
        self.window.statusBar().showMessage(f"Ranking {layer} over {len(seeds)} seeds…")
        self.task.start(lambda: ("rank", rank_channels(collect(), region)))

    def propose(self) -> None:
        from ganinterface.engine.analysis import propose_feature_edit

        features, layer = self.window.features_panel.features(), self.window.features_panel.current_layer()
        seeds_a = self._seeds_field(self.window.features_panel.seeds_a, "Propose edit")
        seeds_b = self._seeds_field(self.window.features_panel.seeds_b, "Propose edit")
        if features is None or seeds_a is None or seeds_b is None:
            return
        if not seeds_a or not seeds_b:
            self.window._ask.error("Propose edit", "Give seeds with the feature and seeds without it")
            return
        region = self._region_mask(*features.shape[1:])
        if region is None:
            return
        collect_a, collect_b = self._features_job(seeds_a, layer), self._features_job(seeds_b, layer)
        mask = Mask((Rect(*self.window.canvas.region, softness=0.5),))
        top = self.window.features_panel.top_count.value()

        def job() -> tuple[str, Any]:
            proposal = propose_feature_edit(collect_a(), collect_b(), region, top_k=top)
            return "propose", proposal.to_edits(layer, mask, name="proposed")

        self.window.statusBar().showMessage(f"Comparing seeds {seeds_a} with {seeds_b}…")
        self.task.start(job)

    @Slot(object, object)
    def _done(self, _job: object, outcome: Outcome) -> None:
        if not outcome.ok:
            self.window._ask.error("Analysis", outcome.error)
            return
        kind, value = outcome.value
        if kind == "rank":
            self.window.features_panel.show_ranking(value)
            self.window.statusBar().showMessage("Ranked over the seeds", 4000)
        else:
            self.window.stack.push(cmd.Command("Proposed edit", lambda scene: scene.replace(
                edits=scene.edits + tuple(value))))
            channels = sorted({c for edit in value for c in edit.channels})
            self.window.features_panel.set_selected_channels(tuple(channels))
            self.window.statusBar().showMessage(f"Added {len(value)} proposed edit(s) on channels "
                                         f"{channels}", 6000)
