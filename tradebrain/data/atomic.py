"""Atomic file writes: write a temporary file beside the target, flush it, then rename.

A reader sees the old file or the new one, never a half-written mix, and a crash at any moment
leaves the old file intact (at worst a stray ``.tmp`` file, which readers ignore).
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import BinaryIO

import polars as pl


def write_atomic(path: Path, write: Callable[[BinaryIO], None]) -> Path:
    """Call ``write(handle)`` on a temporary file beside ``path``, then move it into place."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{uuid.uuid4().hex}.tmp")
    try:
        with open(tmp, "wb") as handle:
            write(handle)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
    directory = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(directory)
    finally:
        os.close(directory)
    return path


def write_parquet_atomic(frame: pl.DataFrame, path: Path) -> Path:
    """Write ``frame`` to ``path`` as zstd Parquet, atomically."""
    return write_atomic(
        path, lambda handle: frame.write_parquet(handle, compression="zstd", statistics=True)
    )


def write_text_atomic(text: str, path: Path) -> Path:
    """Write ``text`` (UTF-8) to ``path``, atomically."""

    def write(handle: BinaryIO) -> None:
        handle.write(text.encode("utf-8"))

    return write_atomic(path, write)
