import json

import numpy as np
import pytest
import torch

from ganinterface.demo import portraits
from ganinterface.demo.classifier import AttributeClassifier, label_indices
from ganinterface.demo.evaluate import (REPORT_RENDER_SEED_BASE, frechet_reading, quality_report,
                                         sample_images, sampled_on)
from ganinterface.export import batch
from ganinterface.models.stylegan2 import StyleGAN2Generator


@pytest.fixture(scope="module")
def tiny_portrait_generator():
    torch.manual_seed(0)
    return StyleGAN2Generator(z_dim=16, c_dim=0, w_dim=16, img_resolution=32, img_width=16,
                              img_channels=3, mapping_kwargs={"num_layers": 2},
                              channel_base=256, channel_max=16).eval()


def test_samples_follow_seeds(tiny_portrait_generator):
    a = sample_images(tiny_portrait_generator, [3, 4], batch=1)
    b = sample_images(tiny_portrait_generator, [4, 3], batch=2)
    assert a.shape == (2, 32, 16, 3) and a.dtype == np.uint8
    assert np.array_equal(a[0], b[1]) and np.array_equal(a[1], b[0])


@pytest.mark.parametrize("where", ["threads", pytest.param("processes", marks=pytest.mark.slow)])
def test_samples_drawn_as_a_batch_job_are_those_drawn_here(tiny_portrait_generator, where):
    seeds = list(range(5, 45))  # a batch of 32 and one of 8, as sample_images draws them

    def executor_for(task, items):
        if where == "threads":
            return batch.InProcess(tiny_portrait_generator, "cpu", task, threads=2)
        return batch.LocalProcesses(tiny_portrait_generator, "cpu", task, 2)

    with batch.one_thread():
        expected = sample_images(tiny_portrait_generator, seeds)
    assert np.array_equal(sampled_on(executor_for, seeds), expected)


def test_quality_report_figures(tiny_portrait_generator):
    torch.manual_seed(1)
    classifier = AttributeClassifier().eval()
    seeds = list(range(10, 22))
    report = quality_report(tiny_portrait_generator, classifier, seeds)
    json.dumps(report)  # serialisable as is

    samples = sample_images(tiny_portrait_generator, seeds)
    probabilities = classifier.classify(samples)
    confident = ((probabilities["mouth_open"].max(1) >= 0.9) & (probabilities["hair_band"].max(1) >= 0.9))
    assert report["confident_share"] == pytest.approx(confident.mean(), abs=1e-4)

    renders, labels = portraits.render_batch(range(REPORT_RENDER_SEED_BASE, REPORT_RENDER_SEED_BASE + 12),
                                             32, 16)
    read = classifier.classify(renders)
    clear = (read["mouth_open"].max(1) >= 0.9) & (read["hair_band"].max(1) >= 0.9)
    assert report["confident_share_renders"] == pytest.approx(clear.mean(), abs=1e-4)
    band = np.mean([label["hair_band"] for label in labels])
    assert report["attribute_frequency"]["hair_band"]["renders"]["present"] == pytest.approx(band, abs=1e-4)
    truth = label_indices(labels)["hair_colour"]
    for index, name in enumerate(classifier.attributes["hair_colour"]):
        share = report["attribute_frequency"]["hair_colour"]["renders"][name]
        assert share == pytest.approx(np.mean(truth == index), abs=1e-4)
    for name, freq in report["attribute_frequency"].items():
        assert sum(freq["samples"].values()) == pytest.approx(1, abs=1e-3), name
    assert set(report["frechet"]) == {"samples_vs_renders", "renders_vs_renders", "renders_vs_blurred"}
    assert all(value >= 0 for value in report["frechet"].values())


@pytest.mark.parametrize("distance, verdict", [
    (8.0, "as close as another set of renders: the classifier cannot tell samples from renders"),
    (23.3, "closer than blurred renders: small differences remain"),
    (138.4, "5.9x as far as blurred renders: samples are still easy to tell from renders"),
])
def test_the_frechet_distance_is_read_against_its_calibration(distance, verdict):
    frechet = {"samples_vs_renders": distance, "renders_vs_renders": 10.07, "renders_vs_blurred": 23.33}
    assert frechet_reading(frechet, 2000) == [
        f"Fréchet distance of the samples to renders: {distance:.1f} (on the classifier's features; "
        "lower is better)",
        "  for scale, with 2000 of each: another set of renders 10.1 (about the best a generator can "
        "score), blurred renders 23.3",
        f"  reading: {verdict}"]
