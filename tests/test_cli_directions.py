import json
import os

import numpy as np
import pytest
import torch

from ganinterface.cli import main
from ganinterface.engine.latents import z_from_seed
from ganinterface.models.native import save_native
from tiny_models import tiny_stylegan2


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory):
    path = tmp_path_factory.mktemp("model") / "tiny.safetensors"
    save_native(tiny_stylegan2(), path)
    return path


def _w(generator, seed, psi=1.0):
    with torch.no_grad():
        return generator.mapping(torch.from_numpy(z_from_seed(seed, generator.z_dim)), None,
                                 truncation_psi=psi)[0, 0].numpy()


def test_mean_difference_of_tagged_seeds(checkpoint, tmp_path, capsys):
    code = main(["directions", str(checkpoint), "--method", "mean-difference", "--positive", "1,2,3",
                 "--negative", "7-8", "--trunc", "0.5", "--name", "smile", "--first", "1",
                 "-o", str(tmp_path)])
    assert code == 0
    vector = np.load(tmp_path / "smile.npy")
    generator = tiny_stylegan2()
    expected = (np.mean([_w(generator, s, 0.5) for s in (1, 2, 3)], axis=0)
                - np.mean([_w(generator, s, 0.5) for s in (7, 8)], axis=0))
    np.testing.assert_allclose(vector, expected, atol=1e-5)
    meta = json.loads((tmp_path / "smile.json").read_text())
    assert meta["first"] == 1 and meta["provenance"]["positive"] == [1, 2, 3]
    assert len(meta["model_hash"]) == 64


def test_sefa_writes_count_unit_directions(checkpoint, tmp_path):
    assert main(["directions", str(checkpoint), "--method", "sefa", "--count", "3",
                 "-o", str(tmp_path)]) == 0
    vectors = [np.load(tmp_path / f"sefa-{i:02d}.npy") for i in range(3)]
    gram = np.stack(vectors) @ np.stack(vectors).T
    np.testing.assert_allclose(gram, np.eye(3), atol=1e-5)


def test_pca_is_of_the_w_of_seeds_zero_to_samples(checkpoint, tmp_path):
    assert main(["directions", str(checkpoint), "--method", "pca", "--count", "2",
                 "--samples", "300", "-q", "-o", str(tmp_path)]) == 0
    generator = tiny_stylegan2()
    ws = np.stack([_w(generator, seed) for seed in range(300)])
    eigenvalues, eigenvectors = np.linalg.eigh(np.cov(ws, rowvar=False))
    for k in range(2):
        vector = np.load(tmp_path / f"pca-{k:02d}.npy")
        cosine = vector @ eigenvectors[:, -1 - k] / np.linalg.norm(vector)
        assert abs(cosine) > 0.9999
    std = json.loads((tmp_path / "pca-00.json").read_text())["provenance"]["std"]
    assert std[0] == pytest.approx(np.sqrt(eigenvalues[-1]), rel=1e-4)


@pytest.mark.parametrize("argv, message", [
    (["--method", "mean-difference", "--positive", "1"], "needs both"),
    (["--method", "pca", "--count", "0"], "at least 1"),
    (["--method", "sefa", "--first", "5", "--last", "2"], "first <= last"),
    (["--method", "mean-difference", "--positive", "x", "--negative", "1"], "cannot read seeds"),
])
def test_bad_requests_are_one_line_errors(checkpoint, tmp_path, capsys, argv, message):
    assert main(["directions", str(checkpoint), *argv, "-o", str(tmp_path)]) == 1
    err = capsys.readouterr().err.strip()
    assert message in err and "\n" not in err


def test_running_one_command_imports_only_its_module():
    import subprocess
    import sys

    code = ("import sys; from ganinterface.cli import build_parser; build_parser('directions'); "
            "print('ganinterface.demo.training' in sys.modules, 'torch' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["False", "False"]


def test_directions_lists_the_files_written_or_sums_up_many(checkpoint, tmp_path, capsys):
    assert main(["directions", str(checkpoint), "--method", "sefa", "--count", "1", "--name", "one",
                 "-o", str(tmp_path)]) == 0
    assert capsys.readouterr().out.splitlines() == [f"wrote {tmp_path / 'one.npy'}",
                                                    f"wrote {tmp_path / 'one.json'}"]
    assert main(["directions", str(checkpoint), "--method", "sefa", "--count", "5",
                 "-o", str(tmp_path / "many")]) == 0
    assert capsys.readouterr().out == (f"wrote 10 files to {tmp_path / 'many'}{os.sep} "
                                       "(sefa-00.npy … sefa-04.json)\n")
    assert main(["directions", str(checkpoint), "--method", "sefa", "--count", "2", "-q",
                 "-o", str(tmp_path / "quiet")]) == 0
    assert capsys.readouterr().out == ""
