"""The projection dialog's crop frame: the whole picture is shown, the user drags and resizes a
frame with the model's aspect, and Project / Keep use exactly that crop."""

from __future__ import annotations

import numpy as np
from PySide6.QtCore import QPoint, QPointF, Qt
from PySide6.QtGui import QWheelEvent
from PySide6.QtWidgets import QApplication

from ganinterface.engine.projection import ProjectionSettings, crop_to_aspect, project
from ganinterface.engine.picture_distance import distance_for
from ganinterface.engine.renderer import Renderer
from ganinterface.engine.scene import Scene
from ui_support import open_window, tiny_generator

SETTINGS = ProjectionSettings(steps=4, candidates=4)


def _wheel(widget, position: QPoint, notches: int) -> None:
    event = QWheelEvent(QPointF(position), QPointF(widget.mapToGlobal(position)), QPoint(0, 0),
                        QPoint(0, 120 * notches), Qt.MouseButton.NoButton, Qt.KeyboardModifier.NoModifier,
                        Qt.ScrollPhase.NoScrollPhase, False)
    QApplication.sendEvent(widget, event)


def _drag(qtbot, widget, start: QPoint, end: QPoint) -> None:
    qtbot.mousePress(widget, Qt.MouseButton.LeftButton, pos=start)
    qtbot.mouseMove(widget, end)
    qtbot.mouseRelease(widget, Qt.MouseButton.LeftButton, pos=end)


def test_the_frame_moves_and_resizes_with_the_aspect_and_keep_projects_that_crop(qtbot, tmp_path):
    from PIL import Image

    # 384 x 192: shown at its own size, one widget pixel per picture pixel; the model is 32 x 64
    picture = np.random.default_rng(4).integers(0, 256, (192, 384, 3), np.uint8)
    Image.fromarray(picture).save(tmp_path / "wide.png")
    with open_window(qtbot, tmp_path) as window:
        window.documents.projection_settings = SETTINGS
        dialog = window.documents.project_picture(str(tmp_path / "wide.png"))
        view = dialog.crop_view
        assert (view.width(), view.height()) == (384, 192)
        assert view.frame.box() == (144, 0, 240, 192)  # the largest 1:2 box, centred
        _drag(qtbot, view, QPoint(192, 96), QPoint(242, 96))  # inside the frame: moves it
        assert view.frame.box() == (194, 0, 290, 192)
        # the bottom-left corner towards the top-right one, which stays: 56 px across
        _drag(qtbot, view, QPoint(194, 190), QPoint(234, 112))
        assert view.frame.box() == (234, 0, 290, 112)
        _wheel(view, QPoint(262, 56), 1)  # one notch: 1.1 times smaller about (262, 56)
        box = view.frame.box()
        assert box == (237, 5, 288, 107) and (box[2] - box[0]) * 2 == box[3] - box[1]
        assert dialog.result is None and not dialog.keep_button.isEnabled()

        qtbot.keyClick(view, Qt.Key.Key_Return)  # Enter projects the framed crop
        assert dialog.result is not None and view.frame.box() == box  # the frame stays
        assert "distance: pixels at 3 scales, edges weighted;" in dialog.figures.text()
        assert dialog.keep_button.isDefault() and not dialog.project_button.isDefault()
        qtbot.keyClick(view, Qt.Key.Key_Right)  # a moved frame: Enter would project again
        assert dialog.project_button.isDefault() and not dialog.keep_button.isDefault()
        qtbot.keyClick(view, Qt.Key.Key_Left)
        assert view.frame.box() == box
        qtbot.keyClick(view, Qt.Key.Key_Return)  # projects that frame again (the same search)
        assert dialog.keep_button.isDefault()
        qtbot.keyClick(view, Qt.Key.Key_Return)  # then Enter keeps what was found
        generator = tiny_generator()
        expected = project(generator, crop_to_aspect(picture, generator, box), SETTINGS,
                           distance=distance_for(None, generator))
        scene = window.stack.scene
        assert np.array_equal(scene.w, expected.w[0].numpy())
        np.testing.assert_array_equal(window.last_result.image,
                                      Renderer(generator).render(Scene(w=scene.w, detail_maps=scene.detail_maps)).image)


def test_a_click_outside_centres_the_frame_there_and_it_never_leaves_the_picture(qtbot, tmp_path):
    from PIL import Image

    Image.fromarray(np.zeros((192, 384, 3), np.uint8)).save(tmp_path / "wide.png")
    with open_window(qtbot, tmp_path) as window:
        dialog = window.documents.project_picture(str(tmp_path / "wide.png"))
        view = dialog.crop_view
        qtbot.mouseClick(view, Qt.MouseButton.LeftButton, pos=QPoint(40, 96))
        assert view.frame.box() == (0, 0, 96, 192)  # centred on x = 40 would start at -8
        _drag(qtbot, view, QPoint(48, 96), QPoint(1000, 96))
        assert view.frame.box() == (288, 0, 384, 192)
        qtbot.keyClick(view, Qt.Key.Key_Minus)
        assert view.frame.box() == (292, 9, 379, 183)  # 96 / 1.1 = 87.3 wide, about its centre
        dialog.reject()
