"""Training of the built-in generator, at toy size: resume is exact, state files are atomic, export loads."""

from __future__ import annotations

import dataclasses
import json
import os
import signal
from pathlib import Path

import numpy as np
import pytest
import torch

from ganinterface.cli.train_cmd import add_arguments, settings_from_args
from ganinterface.models.discriminator import ResidualDiscriminator, minibatch_stddev
from ganinterface.demo.portraits import render_batch
from ganinterface.demo.training import RunOptions, Trainer, TrainingError, TrainSettings, run
from ganinterface.demo.training.data import PrefetchingSource
from ganinterface.demo.training.outputs import export_checkpoint, write_outputs
from ganinterface.models.discriminator import discriminator_path
from ganinterface.demo.training.state import STATE_FILE, load_or_create, save_state
from ganinterface.demo.training.trainer import ema_beta

TOY = TrainSettings(img_height=16, img_width=8, z_dim=8, w_dim=8, mapping_layers=2, g_channel_base=64,
                    g_channel_max=8, d_channel_base=64, d_channel_max=8, batch=8, r1_interval=2,
                    style_mixing=0.5, ema_kimg=0.01, aux_weight=0.5)


def toy_options(run_dir: Path, workers: int = 1) -> RunOptions:
    return RunOptions(run_dir=run_dir, export_path=None, threads=1, workers=workers, log_seconds=1e9)


def assert_states_equal(a: object, b: object, where: str = "state") -> None:
    """Exact comparison of nested state (tensors bit for bit, numpy RNG arrays, plain values)."""
    if isinstance(a, torch.Tensor):
        assert isinstance(b, torch.Tensor) and a.dtype == b.dtype and a.shape == b.shape, where
        assert torch.equal(a, b), f"{where} differs"
    elif isinstance(a, dict):
        assert isinstance(b, dict) and a.keys() == b.keys(), f"{where}: keys differ"
        for key in a:
            assert_states_equal(a[key], b[key], f"{where}.{key}")
    elif isinstance(a, (list, tuple)):
        assert isinstance(b, (list, tuple)) and len(a) == len(b), f"{where}: lengths differ"
        for i, (x, y) in enumerate(zip(a, b)):
            assert_states_equal(x, y, f"{where}[{i}]")
    elif isinstance(a, np.ndarray):
        assert np.array_equal(a, b), f"{where} differs"
    else:
        assert a == b, f"{where}: {a!r} != {b!r}"


def weights_state(trainer: Trainer) -> dict:
    state = trainer.state_dict()
    for key in ("train_seconds", "started", "sessions"):  # wall-clock facts, not maths
        state.pop(key)
    return state


@pytest.mark.parametrize("workers", [1, pytest.param(2, marks=pytest.mark.slow)])
def test_killed_run_resumes_exactly_like_an_uninterrupted_one(tmp_path: Path, workers: int) -> None:
    steps = 6
    uninterrupted = run(TOY, toy_options(tmp_path / "straight", workers), max_steps=steps)

    # SIGTERM arrives while the third batch is being drawn: that step completes, state is saved.
    calls = []

    def data_then_kill(seeds, height, width):
        calls.append(1)
        if len(calls) == 3:
            os.kill(os.getpid(), signal.SIGTERM)
        return render_batch(list(seeds), height, width)

    killed = run(TOY, toy_options(tmp_path / "killed", workers), data_source=data_then_kill,
                       max_steps=steps)
    assert killed.step == 3
    assert (tmp_path / "killed" / STATE_FILE).exists()
    assert not (tmp_path / "killed" / "samples.png").exists()  # stopped by the signal: no outputs

    # The resumed run starts in a fresh Trainer whose RNGs were reseeded: all must come from the file.
    torch.manual_seed(1234)
    np.random.seed(1234)
    resumed = run(TOY, toy_options(tmp_path / "killed", workers), max_steps=steps)

    assert resumed.step == uninterrupted.step == steps
    assert resumed.images_seen == steps * TOY.batch
    assert_states_equal(weights_state(uninterrupted), weights_state(resumed))
    # and the weights did move (a test that compares two untouched networks proves nothing)
    fresh = Trainer(TOY)
    assert not torch.equal(fresh.D.state_dict()["out.weight"], resumed.D.state_dict()["out.weight"])
    assert not torch.equal(fresh.G.state_dict()["synthesis.b16.torgb.weight"],
                           resumed.G.state_dict()["synthesis.b16.torgb.weight"])
    assert resumed.opt_D.state_dict()["state"], "optimiser state was not restored"


def test_resume_restores_optimiser_and_rng_state_from_file(tmp_path: Path) -> None:
    trainer = Trainer(TOY)
    for _ in range(3):
        trainer.train_step()
    save_state(trainer, tmp_path)
    expected_noise = torch.randn(5, generator=trainer.rng)
    expected_numpy = np.random.rand(3)

    restored = load_or_create(TOY, toy_options(tmp_path))
    assert torch.equal(torch.randn(5, generator=restored.rng), expected_noise)
    assert np.array_equal(np.random.rand(3), expected_numpy)
    assert restored.step == 3 and restored.data_position == 3 * TOY.batch
    assert_states_equal(trainer.opt_G.state_dict(), restored.opt_G.state_dict(), "opt_G")


def test_retune_changes_only_optimisation_settings_and_the_optimisers_lr(tmp_path: Path) -> None:
    trainer = Trainer(TOY)
    trainer.train_step()
    save_state(trainer, tmp_path)
    wanted = dataclasses.replace(TOY, lr=TOY.lr / 4, r1_gamma=TOY.r1_gamma * 3, batch=TOY.batch * 2,
                                 ema_kimg=TOY.ema_kimg * 4)

    kept = load_or_create(wanted, toy_options(tmp_path))
    assert kept.settings == TOY
    assert kept.opt_G.param_groups[0]["lr"] == TOY.lr

    options = toy_options(tmp_path)
    options.retune = True
    retuned = load_or_create(wanted, options)
    assert retuned.settings == dataclasses.replace(TOY, lr=TOY.lr / 4, r1_gamma=TOY.r1_gamma * 3,
                                                   ema_kimg=TOY.ema_kimg * 4)
    assert retuned.opt_G.param_groups[0]["lr"] == TOY.lr / 4
    ratio = TOY.r1_interval / (TOY.r1_interval + 1)
    assert retuned.opt_D.param_groups[0]["lr"] == pytest.approx(TOY.lr / 4 * ratio)
    assert retuned.step == 1  # weights and counters still come from the file
    assert_states_equal(trainer.G.state_dict(), retuned.G.state_dict(), "G")


def test_retune_changes_only_the_settings_the_command_line_names(tmp_path: Path) -> None:
    import argparse

    run_settings = dataclasses.replace(TOY, r1_gamma=TOY.r1_gamma * 3)
    trainer = Trainer(run_settings)
    trainer.train_step()
    save_state(trainer, tmp_path)
    parser = argparse.ArgumentParser()
    add_arguments(parser)
    _, options = settings_from_args(parser.parse_args(["--retune", "--lr", "0.0005"]))
    assert options.given == {"lr"}
    wanted = dataclasses.replace(TOY, lr=0.0005)  # r1_gamma back at TOY's: not named, so kept
    options.run_dir = tmp_path
    retuned = load_or_create(wanted, options, quiet=True)
    assert retuned.settings == dataclasses.replace(run_settings, lr=0.0005)


def test_no_resume_starts_afresh(tmp_path: Path) -> None:
    trainer = Trainer(TOY)
    trainer.train_step()
    save_state(trainer, tmp_path)
    options = toy_options(tmp_path)
    options.resume = False
    assert load_or_create(TOY, options).step == 0


def test_state_file_is_replaced_atomically(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    trainer = Trainer(TOY)
    save_state(trainer, tmp_path)
    before = (tmp_path / STATE_FILE).read_bytes()
    assert [p.name for p in tmp_path.iterdir()] == [STATE_FILE]

    trainer.train_step()

    def disk_full(fd: int) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "fsync", disk_full)  # fails after the new bytes went to the temp file
    with pytest.raises(OSError):
        save_state(trainer, tmp_path)
    assert (tmp_path / STATE_FILE).read_bytes() == before
    assert [p.name for p in tmp_path.iterdir()] == [STATE_FILE]


def test_damaged_state_file_is_a_one_line_error(tmp_path: Path) -> None:
    (tmp_path / STATE_FILE).write_bytes(b"not a checkpoint")
    with pytest.raises(TrainingError, match="cannot read training state") as error:
        load_or_create(TOY, toy_options(tmp_path))
    assert "\n" not in str(error.value)


def test_export_writes_a_loadable_native_checkpoint_with_model_card(tmp_path: Path) -> None:
    from ganinterface.models.native import load_native

    trainer = Trainer(TOY)
    for _ in range(2):
        trainer.train_step()
    path = tmp_path / "toy.safetensors"
    export_checkpoint(trainer, path)

    loaded = load_native(path)
    z = torch.randn(3, TOY.z_dim)
    with torch.no_grad():
        expected = trainer.G_ema.synthesize(trainer.G_ema.mapping(z, None)).image
        actual = loaded.synthesize(loaded.mapping(z, None)).image
    torch.testing.assert_close(actual, expected, rtol=0, atol=1e-6)
    card = json.loads(path.with_suffix(".json").read_text())["model_card"]
    assert card["images_seen"] == 2 * TOY.batch
    assert card["steps"] == 2
    assert any("R1" in technique for technique in card["techniques"])


def test_outputs_keep_a_sample_sheet_and_every_export(tmp_path: Path) -> None:
    trainer = Trainer(TOY)
    trainer.train_step()
    options = toy_options(tmp_path / "run")
    options.export_path = tmp_path / "shipped.safetensors"
    options.run_dir.mkdir()
    write_outputs(trainer, options)
    assert (options.run_dir / "samples.png").exists()
    assert (tmp_path / "shipped.safetensors").exists()
    kept = sorted(p.name for p in (options.run_dir / "exports").iterdir())
    assert kept == ["shipped-000000kimg.discriminator.safetensors", "shipped-000000kimg.json",
                    "shipped-000000kimg.safetensors"]
    kept_weights = options.run_dir / "exports" / "shipped-000000kimg.safetensors"
    assert kept_weights.read_bytes() == (tmp_path / "shipped.safetensors").read_bytes()


def _exported_donor(tmp_path: Path, steps: int = 2) -> tuple[Trainer, Path]:
    donor = Trainer(TOY)
    for _ in range(steps):
        donor.train_step()
    donor.sessions.append({"started": "then", "images_at_start": 0})
    path = tmp_path / "donor.safetensors"
    export_checkpoint(donor, path)
    return donor, path


def _warm_options(tmp_path: Path, path: Path, d_warmup_kimg: float = 0.016) -> RunOptions:
    options = toy_options(tmp_path / "run")
    options.init_from = path
    options.d_warmup_kimg = d_warmup_kimg
    return options


def test_warm_start_continues_generator_discriminator_and_counters(tmp_path: Path) -> None:
    donor, path = _exported_donor(tmp_path)
    assert discriminator_path(path).exists()
    warm = load_or_create(TrainSettings(**{**TOY.__dict__, "seed": 1}), _warm_options(tmp_path, path))
    assert_states_equal(donor.G_ema.state_dict(), warm.G.state_dict(), "G")
    assert_states_equal(donor.G_ema.state_dict(), warm.G_ema.state_dict(), "G_ema")
    assert_states_equal(donor.D.state_dict(), warm.D.state_dict(), "D")
    # the model card keeps counting: steps and images go on from the donor's, on new images
    assert (warm.step, warm.images_seen, warm.data_position) == (2, 2 * TOY.batch, 2 * TOY.batch)
    assert warm.sessions[0]["started"] == "then"
    assert warm.d_warmup_left == 0, "a discriminator was restored: no warm-up needed"
    assert "with its discriminator" in warm.session_note["warm_start"]


def test_warm_start_without_discriminator_trains_d_alone_first(tmp_path: Path) -> None:
    donor, path = _exported_donor(tmp_path)
    discriminator_path(path).unlink()
    options = _warm_options(tmp_path, path, d_warmup_kimg=2 * TOY.batch / 1000)
    fresh_d = Trainer(TOY).D.state_dict()
    trainer = run(TOY, options, max_steps=3)  # 2 warm-up steps, then 1 ordinary step
    assert trainer.warmup_steps == 2 and trainer.d_warmup_left == 0
    assert trainer.step == 3 and trainer.images_seen == 3 * TOY.batch
    assert trainer.data_position == 5 * TOY.batch, "warm-up images come from the stream too"
    assert "D trained alone on 16 images" in trainer.sessions[-1]["warm_start"]

    # stopped inside the warm-up, G and its average are the donor's and only D has moved
    stopped = load_or_create(TOY, _warm_options(tmp_path / "again", path, 2 * TOY.batch / 1000))
    stopped.train_step()
    assert stopped.d_warmup_left == TOY.batch and stopped.step == 2
    assert_states_equal(donor.G_ema.state_dict(), stopped.G.state_dict(), "G")
    assert_states_equal(donor.G_ema.state_dict(), stopped.G_ema.state_dict(), "G_ema")
    assert not all(torch.equal(fresh_d[k], v) for k, v in stopped.D.state_dict().items())
    # and a resumed run finishes the warm-up it was in
    save_state(stopped, tmp_path / "saved")
    resumed = load_or_create(TOY, toy_options(tmp_path / "saved"))
    assert (resumed.d_warmup_left, resumed.warmup_steps) == (TOY.batch, 1)


def test_warm_start_from_a_broken_file_is_a_one_line_error(tmp_path: Path) -> None:
    _, path = _exported_donor(tmp_path)
    discriminator_path(path).write_bytes(b"not safetensors")
    with pytest.raises(TrainingError, match="cannot read discriminator") as error:
        load_or_create(TOY, _warm_options(tmp_path, path))
    assert "\n" not in str(error.value)
    discriminator_path(path).unlink()
    sidecar = path.with_suffix(".json")
    document = json.loads(sidecar.read_text())
    del document["model_card"]["settings"]  # exported elsewhere: the command line's settings apply
    sidecar.write_text(json.dumps(document))
    bigger = TrainSettings(**{**TOY.__dict__, "g_channel_max": 16})
    with pytest.raises(TrainingError, match="does not fit the generator"):
        load_or_create(bigger, _warm_options(tmp_path, path))
    sidecar.write_text("{ not json")
    with pytest.raises(TrainingError, match="cannot read its JSON description"):
        load_or_create(TOY, _warm_options(tmp_path, path))


def test_warm_start_keeps_the_exported_runs_settings_unless_retuned(tmp_path: Path) -> None:
    _, path = _exported_donor(tmp_path)
    other = TrainSettings(**{**TOY.__dict__, "seed": 1, "lr": 0.01, "g_channel_max": 16})
    assert load_or_create(other, _warm_options(tmp_path, path)).settings == TOY
    options = _warm_options(tmp_path, path)
    options.retune = True
    retuned = load_or_create(other, options)
    assert retuned.settings == dataclasses.replace(TOY, lr=0.01)  # lr is retunable, shapes are not
    assert retuned.opt_G.param_groups[0]["lr"] == 0.01


def test_ema_half_life() -> None:
    settings = TrainSettings(batch=16, ema_kimg=10.0, ema_rampup=0.05)
    # after one half-life of images the old average keeps exactly half its weight
    assert ema_weight_after(settings, images=10_000, seen=10**7) == pytest.approx(0.5)
    # early in training the ramp-up shortens the half-life to 5% of the images seen
    assert ema_weight_after(settings, images=960, seen=19_200) == pytest.approx(0.5)


def ema_weight_after(settings: TrainSettings, images: int, seen: int) -> float:
    weight = 1.0
    for _ in range(images // settings.batch):
        weight *= ema_beta(settings, seen)
    return weight


def test_minibatch_stddev_matches_a_naive_computation() -> None:
    x = torch.randn(8, 5, 4, 2)
    out = minibatch_stddev(x, group_size=4)
    assert out.shape == (8, 6, 4, 2)
    torch.testing.assert_close(out[:, :5], x)
    # groups are samples {i, i+2, i+4, i+6}; NVlabs reshape(G, -1, ...) interleaves them
    for member in range(2):
        group = x[member::2].double().numpy()
        expected = np.sqrt(group.var(axis=0) + 1e-8).mean()
        for sample in range(member, 8, 2):
            assert np.allclose(out[sample, 5].numpy(), expected, atol=1e-6)


def test_downsampling_conv_matches_blur_then_stride() -> None:
    from ganinterface.models.discriminator import EqualConv2d

    conv = EqualConv2d(2, 3, 3, downsample=True)
    with torch.no_grad():
        conv.bias.normal_()
    x = torch.randn(1, 2, 8, 6, dtype=torch.float64)
    conv = conv.double()
    taps = np.array([1.0, 3.0, 3.0, 1.0]) / 8
    padded = np.pad(x[0].numpy(), ((0, 0), (2, 1), (2, 1)))
    blurred = np.zeros((2, 8, 6))
    for dy in range(4):
        for dx in range(4):
            blurred += taps[dy] * taps[dx] * padded[:, dy:dy + 8, dx:dx + 6]
    weight = conv.weight.detach().numpy() * conv.weight_gain
    padded = np.pad(blurred, ((0, 0), (1, 1), (1, 1)))
    expected = np.zeros((3, 4, 3))
    for o in range(3):
        for y in range(4):
            for xx in range(3):
                window = padded[:, 2 * y:2 * y + 3, 2 * xx:2 * xx + 3]
                expected[o, y, xx] = (window * weight[o]).sum() + conv.bias[o].item()
    np.testing.assert_allclose(conv(x)[0].detach().numpy(), expected, atol=1e-10)


def test_discriminator_shape_and_size_for_the_portrait_format() -> None:
    discriminator = ResidualDiscriminator(128, 64, aux_outputs=2)
    logits, aux = discriminator(torch.randn(4, 3, 128, 64))
    assert logits.shape == (4,) and aux.shape == (4, 2)
    assert 1.2e6 < sum(p.numel() for p in discriminator.parameters()) < 1.6e6


def test_cli_rejects_bad_settings_in_one_line(capsys: pytest.CaptureFixture[str]) -> None:
    from ganinterface.cli import main

    assert main(["train-demo", "--batch", "6", "--run-dir", "/nonexistent/never"]) == 1
    err = capsys.readouterr().err.strip()
    assert err == "ganinterface train-demo: error: --batch must be a multiple of 4 (minibatch-std groups of 4)"


def test_cli_ema_half_life_reaches_the_settings_and_must_be_positive(
        capsys: pytest.CaptureFixture[str]) -> None:
    import argparse

    from ganinterface.cli import main

    parser = argparse.ArgumentParser()
    add_arguments(parser)
    settings, _ = settings_from_args(parser.parse_args(["--ema-kimg", "40", "--retune"]))
    assert settings.ema_kimg == 40.0
    assert main(["train-demo", "--ema-kimg", "0", "--run-dir", "/nonexistent/never"]) == 1
    assert capsys.readouterr().err.strip() == "ganinterface train-demo: error: --ema-kimg must be positive"
    assert main(["train-demo", "--retune", "--run-dir", "/nonexistent/never"]) == 1
    assert capsys.readouterr().err.strip() == ("ganinterface train-demo: error: --retune needs at least "
                                               "one of --lr, --r1-gamma, --style-mixing, --ema-kimg")


def test_prefetching_source_returns_exactly_the_batches_asked_for() -> None:
    prefetcher = PrefetchingSource(render_batch, processes=2, depth=3)
    try:
        requests = [range(100, 104), range(104, 108), range(108, 112),  # the stream, in strides
                    range(0, 2),  # an unforeseen request (a sample sheet, a resume)
                    range(112, 116), range(116, 120)]
        for seeds in requests:
            images, labels = prefetcher(seeds, 16, 8)
            expected_images, expected_labels = render_batch(list(seeds), 16, 8)
            assert np.array_equal(images, expected_images), seeds
            assert labels == expected_labels, seeds
        assert [seeds for seeds, _ in prefetcher.queue][0] == tuple(range(120, 124))
    finally:
        prefetcher.close()


@pytest.mark.slow  # starts worker processes
def test_rendering_ahead_in_processes_trains_the_same_weights(tmp_path: Path) -> None:
    steps = 4
    direct = run(TOY, toy_options(tmp_path / "direct"), max_steps=steps)
    ahead = run(TOY, dataclasses.replace(toy_options(tmp_path / "ahead"), data_workers=2),
                      max_steps=steps)
    assert_states_equal(weights_state(direct), weights_state(ahead))


def test_training_device_refuses_a_missing_device(tmp_path: Path) -> None:
    from ganinterface.engine.device import available_devices

    missing = next(kind for kind in ("cuda", "mps") if kind not in available_devices())
    with pytest.raises(TrainingError, match="not available"):
        run(TOY, dataclasses.replace(toy_options(tmp_path), device=missing), max_steps=1)
