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

from tradebrain.exceptions import UserInputError


def check_output_file(path: Path) -> Path:
    """Refuse an output path that cannot become a file, before any work is done.

    Raises
    ------
    UserInputError
        When ``path`` is an existing folder, or a file stands where a parent folder must be.
    """
    if path.is_dir():
        raise UserInputError(f"{path} is a folder; name a file to write, e.g. {path / 'out.json'}")
    for parent in path.parents:
        if parent.exists():
            if not parent.is_dir():
                raise UserInputError(f"cannot write {path}: {parent} is a file, not a folder")
            break
    return path


def write_atomic(path: Path, write: Callable[[BinaryIO], None]) -> Path:
    """Call ``write(handle)`` on a temporary file beside ``path``, then move it into place.

    Missing parent folders are made. A ``path`` that is a folder is refused
    (:func:`check_output_file`) and the folder is left as it was.
    """
    check_output_file(path)
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
