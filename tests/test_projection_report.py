"""``demo-eval --projection``: its figures, checked against the same figures computed here."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from ganinterface import bundled
from ganinterface.cli import main
from ganinterface.demo import portraits
from ganinterface.demo.classifier import load_classifier
from ganinterface.engine.encoder import load_encoder
from ganinterface.engine.projection import ProjectionSettings
from ganinterface.engine.picture_distance import PerceptualDistance
from ganinterface.engine.renderer import Renderer
from ganinterface.export.userfiles import read_recipe
from ganinterface.models.loading import load_generator
from ganinterface.search.goals import GOALS
from ganinterface.search.projection_report import (AGREEMENT_ATTRIBUTES, RECIPE_GOALS,
                                                   project_pictures, projection_figures)

pytestmark = pytest.mark.slow


def test_figures_of_two_projections_match_a_direct_computation() -> None:
    generator = load_generator(None)
    classifier = load_classifier()
    renderer = Renderer(generator, torch.device("cpu"))
    targets, _ = portraits.render_batch([3, 4], generator.img_height, generator.img_width)
    projected = project_pictures(renderer, targets, ProjectionSettings(space="w+", steps=2),
                                 load_encoder(bundled.builtin_encoder(), generator),
                                 PerceptualDistance())
    recipes = {goal.name: read_recipe(bundled.checkpoints_dir() / "recipes" / goal.file_name)
               for goal in GOALS if goal.name in RECIPE_GOALS}
    figures = projection_figures(renderer, classifier, projected, recipes)

    # the projections' own renders, straight from the generator, the detail maps added by hooks
    ws = torch.from_numpy(np.stack([scene.w for scene in projected.scenes]))
    details = [scene.detail_maps for scene in projected.scenes]
    assert all(detail for detail in details)  # fitted, as project fits them by default
    raw = _with_details(generator, ws, details)
    images = (raw * 127.5 + 128).clamp(0, 255).to(torch.uint8).permute(0, 2, 3, 1).numpy()
    assert np.abs(images.astype(int) - projected.images.astype(int)).max() <= 1
    errors = [np.mean((a.astype(float) - b.astype(float)) ** 2) for a, b in zip(images, targets)]
    assert figures["psnr_db"] == pytest.approx(np.mean([10 * np.log10(255 ** 2 / e) for e in errors]),
                                               abs=0.05)
    read_targets, read = classifier.classify(targets), classifier.classify(images)
    for name in AGREEMENT_ATTRIBUTES:
        same = read_targets[name].argmax(1) == read[name].argmax(1)
        assert figures["agreement"][name] == pytest.approx(same.mean())

    middle = _with_details(generator, ws.mean(dim=0, keepdim=True),
                           [{name: (details[0][name] + details[1][name]) / 2 for name in details[0]}])
    middle = (middle * 127.5 + 128).clamp(0, 255).to(torch.uint8).permute(0, 2, 3, 1).numpy()
    probabilities = classifier.classify(middle)
    confident = all(probabilities[name].max() >= 0.9 for name in ("mouth_open", "hair_band"))
    assert figures["morph"] == {"pairs": 1, "confident": float(confident)}

    closed = int((read["mouth_open"].argmax(1) == 0).sum())
    assert figures["recipes"]["open mouth"]["count"] == closed
    assert figures["seconds_per_image"] > 0


def _with_details(generator, ws, details):
    images = []
    for w, detail in zip(ws, details):
        hooks = {name: (lambda x, d=torch.tensor(value): x + d) for name, value in detail.items()}
        with torch.no_grad():
            images.append(generator.synthesize(w[None], hooks=hooks).image)
    return torch.cat(images)


def test_cli_prints_and_writes_both_starts(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "report.json"
    assert main(["demo-eval", "--projection", "--seeds", "0-1", "--steps", "1", "--json", str(out)]) == 0
    text = capsys.readouterr().out
    assert "with encoder" in text and "without encoder" in text and "PSNR" in text
    report = json.loads(out.read_text())
    defaults = ProjectionSettings()
    assert report["feature_level"] == defaults.feature_level
    assert f"loudness held ({defaults.feature_level:g})" in text.splitlines()[0]
    assert report["count"] == 2 and report["encoder"].endswith("portraits-128x64.encoder.safetensors")
    for start in report["starts"].values():
        assert set(start) == {"psnr_db", "agreement", "seconds_per_image", "cpu_seconds_per_image",
                              "recipes", "morph"}
        assert set(start["recipes"]) == set(RECIPE_GOALS)
