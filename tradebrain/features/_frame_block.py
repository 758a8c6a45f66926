"""A block of float64 feature columns that becomes a polars frame without copying the values.

The batch engine writes every feature into one ``(features, rows)`` float64 block, allocated
once per call, together with an Arrow validity bitmap per column (NaN is null). Each row of
the block then becomes one Arrow array whose value buffer *is* that row, so polars receives
the columns zero-copy, without a second pass that would allocate and fill another copy.

The block comes from Arrow's memory pool rather than numpy: the pool keeps freed memory for
the next call, whereas a fresh multi-GB numpy block is mapped anew from the OS every call,
and on a virtual machine first-touch page faults then cost seconds per GB.
"""

from __future__ import annotations

import numpy as np
import polars as pl
import pyarrow as pa


class FeatureBlock:
    """Preallocated storage for ``len(names)`` float64 columns of ``rows`` values each.

    Parameters
    ----------
    names
        Column names, in output order.
    rows
        Values per column.
    """

    def __init__(self, names: list[str], rows: int) -> None:
        self.names = names
        self.rows = rows
        self._width = (rows + 7) // 8
        self._value_buffer = pa.allocate_buffer(len(names) * rows * 8)
        self._validity_buffer = pa.allocate_buffer(len(names) * self._width)
        self.values = np.frombuffer(self._value_buffer, dtype=np.float64).reshape(len(names), rows)
        self.validity = np.frombuffer(self._validity_buffer, dtype=np.uint8).reshape(
            len(names), self._width
        )

    def store(self, column: int, values: np.ndarray, warmup: int) -> None:
        """Copy ``values`` (length ``rows``) into a column, NaN over its first ``warmup`` rows."""
        row = self.values[column]
        head = min(warmup, self.rows)
        row[:head] = np.nan
        row[head:] = values[head:]
        self.validity[column] = np.packbits(~np.isnan(row), bitorder="little")

    def to_frame(self) -> pl.DataFrame:
        """Return the columns as a frame of Float64 columns that shares the block's memory."""
        arrays = [
            pa.Array.from_buffers(
                pa.float64(),
                self.rows,
                [
                    self._validity_buffer.slice(i * self._width, self._width),
                    self._value_buffer.slice(i * self.rows * 8, self.rows * 8),
                ],
            )
            for i in range(len(self.names))
        ]
        frame = pl.from_arrow(pa.Table.from_arrays(arrays, names=self.names), rechunk=False)
        assert isinstance(frame, pl.DataFrame)
        return frame
