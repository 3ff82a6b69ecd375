"""The window and `ganinterface render --scene FILE` produce identical pixels for one saved Scene."""

from __future__ import annotations

import numpy as np
from PIL import Image

from ganinterface.cli import main as cli_main
from ganinterface.models.native import save_native
from ganinterface.ui.canvas import Tool
from ganinterface.ui.model_loading import load_model
from ui_support import drag, open_window, tiny_generator


def test_window_and_cli_render_identical_pixels(qtbot, tmp_path):
    checkpoint = tmp_path / "tiny.safetensors"
    save_native(tiny_generator(), checkpoint)
    with open_window(qtbot, tmp_path, loader=load_model) as window:
        window.load_model_async(str(checkpoint))
        assert window.model.checkpoint == str(checkpoint)
        window.latent_panel.seed.setValue(17)
        window.latent_panel.psi.setValue(0.7)
        window.features_panel.set_current_layer("b16.conv1")
        window.features_panel.set_selected_channels((1, 4, 9))
        drag(window, Tool.BRUSH, [(10.0, 20.0), (16.0, 24.0), (20.0, 30.0)])
        drag(window, Tool.RECT, [(2.0, 40.0), (12.0, 50.0)])
        assert len(window.stack.scene.edits) == 2
        scene_file = tmp_path / "scene.json"
        assert window.documents.write_scene(scene_file)
        shown = window.last_result.image.copy()

    out = tmp_path / "cli.png"
    assert cli_main(["render", "--scene", str(scene_file), "-o", str(out)]) == 0
    cli_pixels = np.asarray(Image.open(out).convert("RGB"))
    assert cli_pixels.shape == shown.shape
    np.testing.assert_array_equal(cli_pixels, shown)


def test_the_status_bar_the_export_dialog_and_info_write_the_size_alike(qtbot, tmp_path, capsys):
    from ganinterface import bundled
    from ganinterface.ui.export_dialog import ExportDialog

    assert bundled.builtin_checkpoint().exists()
    size = "64 × 128 px"  # the built-in portraits: 64 wide, 128 high; width first, as image tools
    assert cli_main(["info"]) == 0
    assert f"resolution:    {size}," in capsys.readouterr().out
    with open_window(qtbot, tmp_path, loader=load_model) as window:
        assert f" · {size} · " in window.controls.model_label.text()
        dialog = ExportDialog(window, window.model, window.stack.scene,
                              window.animation_panel.frames, window.settings)
        dialog.scale.setValue(1)
        assert dialog.frame_note.text() == f"1 frame of {size}"
        dialog.done(0)
