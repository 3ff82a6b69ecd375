"""Feature maps shown on the image: the channel opened large in the Channel dock, its overlay on the
image, and the region marked on either canvas (shown on both)."""

from __future__ import annotations

from PySide6.QtWidgets import QDockWidget, QStatusBar

from ganinterface.ui.canvas import ImageCanvas
from ganinterface.ui.features_panel import ChannelView, FeaturesPanel, palette_lut


class FeatureViews:
    """Keeps the image canvas and the channel view in step with the feature panel."""

    def __init__(self, panel: FeaturesPanel, channel_view: ChannelView, canvas: ImageCanvas,
                 channel_dock: QDockWidget, status: QStatusBar) -> None:
        self.panel = panel
        self.channel_view = channel_view
        self.canvases = (canvas, channel_view.canvas)
        self.channel_dock = channel_dock
        self.status = status

    def mark_region(self, box: tuple[float, float, float, float]) -> None:
        for canvas in self.canvases:
            canvas.set_region(box)
        self.status.showMessage("Region marked: press “Rank channels by region”", 4000)

    def clear_region(self) -> None:
        for canvas in self.canvases:
            canvas.set_region(None)

    def open_channel(self, channel: int) -> None:
        self.channel_dock.show()
        self.channel_dock.raise_()
        self.channel_view.channel = channel
        self.refresh()

    def refresh(self) -> None:
        """Show the opened channel of the features now shown (and over the image if Overlay is on)."""
        image = self.canvases[0]
        features, channel = self.panel.features(), self.channel_view.channel
        if features is None or channel is None or channel >= features.shape[0]:
            image.set_overlay(None)
            return
        palette, values = self.panel.palette_name(), features[channel]
        bound = self.channel_view.show_channel(self.panel.current_layer(), channel, values, palette)
        if self.panel.overlay.isChecked():
            image.set_overlay(values, palette_lut(palette), bound)
        else:
            image.set_overlay(None)
