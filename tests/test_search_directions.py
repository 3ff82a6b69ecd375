"""The shipped-direction search end to end on a tiny generator, read by a small differentiable
classifier: every method's best and the chosen direction are written with how they were chosen, and
the figures in their JSON are what the Renderer's images say."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from ganinterface.demo.classifier import to_tensor
from ganinterface.engine.renderer import Renderer
from ganinterface.engine.scene import Scene
from ganinterface.export import batch
from ganinterface.export.userfiles import read_direction
from ganinterface.search.directions import JOINED, METHOD_FILES
from ganinterface.search.metrics import flip_rate, preservation
from ganinterface.search.shipped import make_shipped_directions
from tiny_models import tiny_stylegan2


class RegionReader(torch.nn.Module):
    """Mouth open: the lower half brighter than usual; band: the upper half; hair colour: which of
    red and green is stronger than usual; eye colour: blue.  Thresholds are the medians of renders."""

    attributes = {"mouth_open": ("closed", "open"), "hair_band": ("absent", "present"),
                  "hair_colour": ("red", "green"), "eye_colour": ("dark", "blue")}

    def __init__(self, images: np.ndarray):
        super().__init__()
        self.centre = torch.zeros(5)
        self.centre = torch.from_numpy(np.median(self._readings(to_tensor(images)).numpy(), axis=0))

    @staticmethod
    def _readings(x: torch.Tensor) -> torch.Tensor:
        half = x.shape[2] // 2
        return torch.stack([x[:, :, half:].mean(dim=(1, 2, 3)), x[:, :, :half].mean(dim=(1, 2, 3)),
                            x[:, 0].mean(dim=(1, 2)), x[:, 1].mean(dim=(1, 2)), x[:, 2].mean(dim=(1, 2))],
                           dim=1)

    def forward(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        r = (self._readings(x) - self.centre) * 40.0
        pair = lambda v: torch.stack([-v, v], dim=1)  # noqa: E731
        return {"mouth_open": pair(r[:, 0]), "hair_band": pair(r[:, 1]),
                "hair_colour": pair(r[:, 3] - r[:, 2]), "eye_colour": pair(r[:, 4])}

    @torch.no_grad()
    def classify(self, images: np.ndarray) -> dict[str, np.ndarray]:
        return {k: torch.softmax(v, dim=1).numpy() for k, v in self(to_tensor(images)).items()}


@pytest.fixture(scope="module")
def shipped(tmp_path_factory):
    generator = tiny_stylegan2()
    renders = Renderer(generator, "cpu").render_batch([Scene(seed=s) for s in range(900, 960)])
    classifier = RegionReader(np.stack([r.image for r in renders]))
    out = tmp_path_factory.mktemp("directions")
    jobs = []

    def on_threads(task, items):  # samples drawn as batch jobs, as demo-directions draws them
        jobs.append(items)
        return batch.InProcess(generator, "cpu", task, threads=2)

    lines = []
    names = make_shipped_directions(generator, classifier, out, finding=60, tuning=12,
                                    held_out=range(16), executor_for=on_threads, report=lines.append)
    assert jobs == [60, 12, 16]
    for name in ("mouth open", "hair band"):  # minutes each on the built-in model: said as each ends
        for side in ("above", "below"):
            assert any(line.startswith(f"{name}: learnt style offsets {side} zero") for line in lines)
    return generator, classifier, out, names


@pytest.mark.slow  # the whole search on a tiny model
def test_each_method_and_the_chosen_direction_are_written_with_their_figures(shipped):
    generator, classifier, out, names = shipped
    assert names[:2] == ["mouth open", "hair band"]
    renderer = Renderer(generator, "cpu")
    seeds = list(range(16))
    before_images = np.stack([renderer.render(Scene(seed=s)).image for s in seeds])
    before = {k: v.argmax(axis=1) for k, v in classifier.classify(before_images).items()}
    for stem, attribute in (("mouth-open", "mouth_open"), ("hair-band", "hair_band")):
        for file_stem in METHOD_FILES.values():
            found = list((out / "directions" / "methods").glob(f"{stem}.{file_stem}.*"))
            assert found, f"{stem}: no {file_stem} direction"
        files = sorted((out / "directions").glob(f"{stem}.*"))
        direction = read_direction(files[-1] if len(files) == 1 else out / "directions" / f"{stem}.npy",
                                   generator)
        provenance = direction.provenance
        assert provenance["chosen_by"] in {*METHOD_FILES, JOINED}
        held_out = provenance["held_out"]
        assert held_out["seeds"] == [0, 15]
        for state, amount in provenance["amounts"].items():
            assert np.sign(amount) == (1 if state == "1" else -1)
            after_images = np.stack([renderer.render(Scene(seed=s, edits=(direction.to_edit(amount),))).image
                                     for s in seeds])
            after = {k: v.argmax(axis=1) for k, v in classifier.classify(after_images).items()}
            expected = {"flip_rate": flip_rate(before[attribute], after[attribute], int(state)),
                        "preservation": preservation(before, after, attribute)}
            measured = held_out["by_state"][state]
            for key in ("flip_rate", "preservation"):  # batched renders round a few pixels apart
                assert measured[key] == pytest.approx(expected[key], abs=0.05), (stem, state, key)
