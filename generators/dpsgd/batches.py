"""Where a DP-SGD step's rows come from, by index: the encoded table held as a tensor,
or the private code store read through memory maps (:class:`~synthrelease.private.codes.RowAccess`).

Both hand :func:`~synthrelease.generators.dpsgd.train.train_loop` the same thing for the
same indices: the rows' integer codes, shape ``(batch, columns)``, int64, on the
training device. Reading from the store costs O(batch) a step whatever the table (the
rows are gathered on the CPU and the batch alone goes to the device); the tensor costs 8
bytes a cell of the whole table, on the device. Each holds sensitive rows: nothing here
logs, returns or stores anything but the batch it is asked for.
"""

from __future__ import annotations

from typing import Protocol

import numpy as np
import torch

from synthrelease.private.codes import RowAccess


class Batches(Protocol):
    """Rows by index: ``rows`` of them (the exact count: private), on ``device``."""

    @property
    def rows(self) -> int: ...

    @property
    def device(self) -> torch.device: ...

    def take(self, index: np.ndarray) -> torch.Tensor:
        """The codes of rows ``index`` (int64 indices), shape ``(len(index), columns)``."""
        ...


class TensorBatches:
    """The encoded rows as one int64 tensor ``(rows, columns)`` on the training device."""

    def __init__(self, codes: torch.Tensor) -> None:
        self._codes = codes

    @property
    def rows(self) -> int:
        return int(self._codes.shape[0])

    @property
    def device(self) -> torch.device:
        return self._codes.device

    def take(self, index: np.ndarray) -> torch.Tensor:
        return self._codes[torch.from_numpy(index).to(self._codes.device)]


class StoreBatches:
    """The code store's rows, gathered by index on the CPU; the batch goes to ``device``."""

    def __init__(self, access: RowAccess, device: torch.device) -> None:
        self._access = access
        self._device = device

    @property
    def rows(self) -> int:
        return self._access.count

    @property
    def device(self) -> torch.device:
        return self._device

    def take(self, index: np.ndarray) -> torch.Tensor:
        codes = np.ascontiguousarray(self._access.gather(index).T, dtype=np.int64)
        return torch.from_numpy(codes).to(self._device)
