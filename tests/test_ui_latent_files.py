"""The window opens latent files (a projected picture's W or W+, and its noise maps) as one undo step."""

from __future__ import annotations

import numpy as np

from ganinterface.engine.renderer import Renderer
from ganinterface.engine.scene import Scene
from ganinterface.export.userfiles import LatentFile, write_latent_file
from ganinterface.models.native import generator_hash
from ui_support import open_window, tiny_generator


def test_a_latent_file_becomes_the_scene_and_undo_takes_it_back(qtbot, tmp_path):
    generator = tiny_generator()
    w = np.random.default_rng(0).standard_normal((generator.num_ws, generator.w_dim)).astype(np.float32)
    noise = {name: np.zeros(tuple(v.shape), np.float32) for name, v in generator.stored_noise().items()}
    write_latent_file(tmp_path / "me.npz", LatentFile(w=w, noise=noise, model_hash=generator_hash(generator)))
    write_latent_file(tmp_path / "other.npz", LatentFile(w=w, model_hash="0" * 64))
    with open_window(qtbot, tmp_path) as window:
        before = window.stack.scene
        window.documents.load_latent(str(tmp_path / "me.npz"))
        expected = Renderer(tiny_generator()).render(Scene(w=w, noise_maps=noise))
        np.testing.assert_array_equal(window.last_result.image, expected.image)
        window.stack.undo()
        assert window.stack.scene == before
        window.documents.load_latent(str(tmp_path / "other.npz"))
        assert window._ask.errors[-1].endswith("made for another model (000000000000…), not this "
                                               f"one ({generator_hash(generator)[:12]}…)")
        assert window.stack.scene == before
