"""The renderer's store of per-layer states, taps and images: least recently used, under a byte
budget."""

from __future__ import annotations

from collections import OrderedDict

import torch

Tensor = torch.Tensor


class LayerCache:
    """Least-recently-used store of tensors (states, taps, images) under a byte budget."""

    def __init__(self, max_bytes: int):
        self.max_bytes = max_bytes
        self._entries: OrderedDict[tuple[str, str], tuple[object, int]] = OrderedDict()
        self._bytes = 0

    @staticmethod
    def _size(value: object) -> int:
        tensors = value.values() if isinstance(value, dict) else [value]
        return sum(t.numel() * t.element_size() for t in tensors if isinstance(t, Tensor))

    def get(self, kind: str, key: str) -> object | None:
        entry = self._entries.get((kind, key))
        if entry is None:
            return None
        self._entries.move_to_end((kind, key))
        return entry[0]

    def has(self, kind: str, key: str) -> bool:
        return (kind, key) in self._entries

    def put(self, kind: str, key: str, value: object) -> None:
        old = self._entries.pop((kind, key), None)
        if old is not None:
            self._bytes -= old[1]
        size = self._size(value)
        # room is made before the entry counts, so ``bytes``, read from another thread, never
        # exceeds the budget (unless one entry alone does)
        while self._entries and self._bytes + size > self.max_bytes:
            _, (_, dropped) = self._entries.popitem(last=False)
            self._bytes -= dropped
        self._entries[(kind, key)] = (value, size)
        self._bytes += size

    @property
    def bytes(self) -> int:
        return self._bytes

    def clear(self) -> None:
        self._entries.clear()
        self._bytes = 0
