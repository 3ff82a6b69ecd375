import os

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

import numpy as np
import pytest
import torch


@pytest.fixture(autouse=True)
def _state_dir_in_tmp(tmp_path, monkeypatch):
    """The window's autosave goes to the test's folder, never the user's state folder."""
    monkeypatch.setenv("GANINTERFACE_STATE_DIR", str(tmp_path / "state"))


@pytest.fixture(autouse=True)
def _deterministic_torch():
    torch.manual_seed(0)
    np.random.seed(0)
    yield
