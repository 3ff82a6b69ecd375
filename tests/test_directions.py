import json

import numpy as np
import pytest
import torch

from ganinterface.engine.directions import (Direction, DirectionError, ganspace_directions,
                                            load_direction, mean_difference, model_hash,
                                            principal_directions, sample_w, save_direction,
                                            sefa_directions, style_layers)
from tiny_models import tiny_stylegan2


@pytest.fixture(scope="module")
def generator():
    return tiny_stylegan2()


def test_mean_difference():
    positive = np.array([[1.0, 2.0], [3.0, 4.0]])
    negative = np.array([[0.0, 0.0], [0.0, 2.0], [3.0, 1.0]])
    np.testing.assert_allclose(mean_difference(positive, negative), [1.0, 2.0])
    with pytest.raises(DirectionError, match="differ in shape"):
        mean_difference(positive, np.zeros((2, 3)))


def _abs_cosine(a, b):
    return abs(float(np.dot(a, b) / np.linalg.norm(a) / np.linalg.norm(b)))


def test_principal_directions_match_the_covariance_eigenvectors():
    rng = np.random.default_rng(0)
    samples = rng.normal(size=(500, 6)) * np.array([5.0, 3.0, 2.0, 1.0, 0.5, 0.2])
    samples = samples @ np.linalg.qr(rng.normal(size=(6, 6)))[0] + 7.0
    components, std = principal_directions(samples, 3)
    eigenvalues, eigenvectors = np.linalg.eigh(np.cov(samples, rowvar=False))
    for k in range(3):
        assert _abs_cosine(components[k], eigenvectors[:, -1 - k]) > 0.9999
        assert std[k] == pytest.approx(np.sqrt(eigenvalues[-1 - k]), rel=1e-5)
        assert components[k][np.argmax(np.abs(components[k]))] > 0  # sign convention


def test_sefa_matches_svd_of_the_modulation_weights(generator):
    layers = style_layers(generator, first=1, last=3)
    assert layers and all(not name.endswith("torgb") for name in layers)
    parameters = dict(generator.named_parameters())
    stacked = np.concatenate([parameters[f"synthesis.{name}.affine.weight"].detach().numpy()
                              for name in layers]).astype(np.float64)
    normalised = stacked / np.linalg.norm(stacked, axis=1, keepdims=True)
    _, singular, right = np.linalg.svd(normalised)
    directions, eigenvalues = sefa_directions(generator, count=3, first=1, last=3)
    for k in range(3):
        assert _abs_cosine(directions[k], right[k]) > 0.9999
        assert eigenvalues[k] == pytest.approx(singular[k] ** 2, rel=1e-4)
    raw, _ = sefa_directions(generator, count=1, first=1, last=3, normalise=False)
    assert _abs_cosine(raw[0], np.linalg.svd(stacked)[2][0]) > 0.9999


def test_sample_w_maps_each_seeds_z_as_renders_draw_it(generator):
    seeds = [3, 17, 4, 1000, 5, 6, 7, 8, 9]
    ws = sample_w(generator, seeds, batch=4)
    with torch.no_grad():
        expected = np.concatenate([generator.mapping(torch.from_numpy(
            np.random.RandomState(s).randn(1, generator.z_dim).astype(np.float32)))[:, 0].numpy()
            for s in seeds])
    np.testing.assert_allclose(ws, expected, atol=1e-6)
    components, std = ganspace_directions(generator, count=2, samples=64)
    assert components.shape == (2, generator.w_dim) and std[0] >= std[1] > 0


def test_sample_w_draws_a_conditional_models_class_from_the_seed():
    conditional = tiny_stylegan2(c_dim=3)
    seeds = list(range(12))
    classes = []
    for s in seeds:
        rng = np.random.RandomState(s)
        rng.randn(1, conditional.z_dim)
        classes.append(rng.randint(3))
    assert len(set(classes)) > 1

    def mapped(classes_of_seeds):
        with torch.no_grad():
            return np.concatenate([conditional.mapping(
                torch.from_numpy(np.random.RandomState(s).randn(1, 8).astype(np.float32)),
                torch.nn.functional.one_hot(torch.tensor([k]), 3).float())[:, 0].numpy()
                for s, k in zip(seeds, classes_of_seeds)])

    np.testing.assert_allclose(sample_w(conditional, seeds), mapped(classes), atol=1e-6)
    np.testing.assert_allclose(sample_w(conditional, seeds, class_index=2), mapped([2] * 12),
                               atol=1e-6)


def test_save_and_load_round_trip(tmp_path, generator):
    vector = np.arange(generator.w_dim, dtype=np.float32)
    made_for = model_hash(generator)
    direction = Direction(vector, first=2, last=4, name="smile", model_hash=made_for,
                          provenance={"how": "mean difference of 20 tagged seeds"})
    npy, sidecar = save_direction(tmp_path / "smile", direction)
    assert npy.name == "smile.npy" and sidecar.name == "smile.json"
    assert json.loads(sidecar.read_text())["model_hash"] == made_for
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []  # no temporaries
    loaded = load_direction(npy, model_hash=made_for, w_dim=generator.w_dim, num_ws=generator.num_ws)
    np.testing.assert_array_equal(loaded.vector, vector)
    assert (loaded.first, loaded.last, loaded.name) == (2, 4, "smile")
    assert loaded.provenance["how"].startswith("mean difference")
    edit = loaded.to_edit(1.5, source=str(npy))
    assert edit.amount == 1.5 and edit.first == 2 and edit.last == 4


def test_direction_for_another_model_is_refused(tmp_path, generator):
    other = tiny_stylegan2(seed=1)
    assert model_hash(other) != model_hash(generator)
    npy, _ = save_direction(tmp_path / "d.npy", Direction(np.ones(8, np.float32),
                                                          model_hash=model_hash(other)))
    with pytest.raises(DirectionError, match=r"d\.npy: made for another model"):
        load_direction(npy, model_hash=model_hash(generator), w_dim=8)


@pytest.mark.parametrize("shape", [(5,), (3, 8), (2, 2, 8)])
def test_wrong_shape_is_refused(tmp_path, shape):
    np.save(tmp_path / "bad.npy", np.zeros(shape, np.float32))
    with pytest.raises(DirectionError, match=r"bad\.npy: .*shape"):
        load_direction(tmp_path / "bad.npy", w_dim=8, num_ws=6)


def test_pt_and_csv_vectors(tmp_path):
    vector = np.linspace(-1, 1, 8).astype(np.float32)
    torch.save(torch.from_numpy(vector), tmp_path / "plain.pt")
    torch.save({"direction": torch.from_numpy(vector), "step": torch.tensor(3)}, tmp_path / "dict.pt")
    np.savetxt(tmp_path / "row.csv", vector[None], delimiter=",")
    np.savetxt(tmp_path / "rows.csv", np.tile(vector, (6, 1)), delimiter=",")
    for name in ("plain.pt", "dict.pt", "row.csv"):
        np.testing.assert_allclose(load_direction(tmp_path / name, w_dim=8).vector, vector, atol=1e-6)
    assert load_direction(tmp_path / "rows.csv", w_dim=8, num_ws=6).vector.shape == (6, 8)


def test_hostile_and_broken_files_are_refused(tmp_path):
    marker = tmp_path / "pwned"

    class Payload:
        def __reduce__(self):
            return (open, (str(marker), "w"))

    torch.save({"direction": Payload()}, tmp_path / "evil.pt")
    with pytest.raises(DirectionError, match=r"evil\.pt: not a readable weights-only torch file"):
        load_direction(tmp_path / "evil.pt", w_dim=8)
    assert not marker.exists()
    (tmp_path / "text.csv").write_text("1,2,x\n")
    with pytest.raises(DirectionError, match=r"text\.csv: not a numeric CSV"):
        load_direction(tmp_path / "text.csv")
    (tmp_path / "junk.npy").write_bytes(b"\x00garbage")
    with pytest.raises(DirectionError, match=r"junk\.npy: not a readable \.npy"):
        load_direction(tmp_path / "junk.npy")
    with pytest.raises(DirectionError, match="no such file"):
        load_direction(tmp_path / "missing.npy")
    np.save(tmp_path / "nan.npy", np.array([np.nan] * 8, np.float32))
    with pytest.raises(DirectionError, match="NaN"):
        load_direction(tmp_path / "nan.npy")
    with pytest.raises(DirectionError, match="unknown direction format .npz"):
        (tmp_path / "x.npz").write_bytes(b"")
        load_direction(tmp_path / "x.npz")


def test_a_sidecar_with_an_unknown_field_is_refused_naming_it(tmp_path):
    npy, sidecar = save_direction(tmp_path / "d", Direction(vector=np.ones(4, np.float32), name="d"))
    meta = json.loads(sidecar.read_text())
    meta["strength"] = 2.0
    sidecar.write_text(json.dumps(meta))
    with pytest.raises(DirectionError, match=r"d\.json: unknown field\(s\): strength"):
        load_direction(npy)
