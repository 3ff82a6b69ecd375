"""A checkpoint refused for safety says so, and says what it asked to run; a damaged one says it is
damaged. Hostile streams are hidden where a careless loader would not look: inside a torch.save
zip, and inside the tensor storages of an NVlabs pickle (themselves pickles or torch.save files)."""

from __future__ import annotations

import collections
import io
import pickle
import zipfile

import pytest
import torch

from ganinterface.models.base import CheckpointError
from ganinterface.models.loading import load_generator
from nvlabs_fixtures import CallOnUnpickle, file_writing_code

SAFETY = "refused for safety"


def _torch_zip(payload) -> bytes:
    stream = io.BytesIO()
    torch.save(payload, stream)
    return stream.getvalue()


def _pickle_with_global(module: str, name: str) -> bytes:
    """A protocol-2 pickle that calls ``module.name("x")``, written opcode by opcode."""
    return b"\x80\x02c" + f"{module}\n{name}\n".encode() + b"X\x01\x00\x00\x00x\x85R."


def _nvlabs_pickle_with_storage(blob: bytes) -> bytes:
    """An NVlabs-style pickle holding one tensor whose storage is ``blob``, as torch pickles it."""
    tensor = CallOnUnpickle(torch._utils._rebuild_tensor_v2,
                            CallOnUnpickle(torch.storage._load_from_bytes, blob), 0, (1,), (1,),
                            False, collections.OrderedDict())
    return pickle.dumps({"G_ema": tensor})


def _refusal(tmp_path, name: str, data: bytes) -> str:
    path = tmp_path / name
    path.write_bytes(data)
    with pytest.raises(CheckpointError) as caught:
        load_generator(path)
    message = str(caught.value)
    assert "\n" not in message and message.startswith(str(path))
    return message


@pytest.mark.parametrize("module, name", [("os", "system"), ("builtins", "eval"),
                                          ("subprocess", "Popen")])
def test_a_storage_pickle_asking_for_a_callable_is_refused_for_safety(tmp_path, module, name):
    message = _refusal(tmp_path, "g.pkl", _nvlabs_pickle_with_storage(_pickle_with_global(module, name)))
    assert SAFETY in message and f"{module}.{name}" in message and "tensor storage" in message
    assert "corrupt" not in message


def test_a_storage_torch_file_running_code_is_refused_for_safety(tmp_path):
    marker = tmp_path / "pwned"
    blob = _torch_zip(CallOnUnpickle(exec, file_writing_code(marker)))
    message = _refusal(tmp_path, "g.pkl", _nvlabs_pickle_with_storage(blob))
    assert SAFETY in message and "builtins.exec" in message and "corrupt" not in message
    assert not marker.exists()


def test_a_torch_zip_whose_data_pkl_calls_eval_is_refused_for_safety(tmp_path):
    marker = tmp_path / "pwned"
    message = _refusal(tmp_path, "g.pt", _torch_zip({"g_ema": CallOnUnpickle(eval, file_writing_code(marker))}))
    assert SAFETY in message and "builtins.eval" in message and "corrupt" not in message
    assert not marker.exists()


def test_a_damaged_storage_is_corrupt_not_hostile(tmp_path):
    blob = _torch_zip(torch.zeros(4).untyped_storage())
    message = _refusal(tmp_path, "g.pkl", _nvlabs_pickle_with_storage(blob[: len(blob) // 2]))
    assert "corrupt" in message and "tensor storage" in message and SAFETY not in message


def test_a_storage_of_garbage_bytes_is_corrupt_not_hostile(tmp_path):
    message = _refusal(tmp_path, "g.pkl", _nvlabs_pickle_with_storage(b"\x80\x02\xff\xfe garbage"))
    assert "corrupt" in message and SAFETY not in message


def test_a_torch_zip_with_a_damaged_data_pkl_is_corrupt_not_hostile(tmp_path):
    original = _torch_zip({"g_ema": {"style.1.weight": torch.zeros(2, 2)}})
    damaged = io.BytesIO()
    with zipfile.ZipFile(io.BytesIO(original)) as source, zipfile.ZipFile(damaged, "w") as target:
        for item in source.infolist():
            data = source.read(item)
            if item.filename.endswith("data.pkl"):
                data = data[:2] + b"\xff" + data[3:]  # an opcode that does not exist
            target.writestr(item, data)
    message = _refusal(tmp_path, "g.pt", damaged.getvalue())
    assert "truncated or corrupt torch file" in message and SAFETY not in message
