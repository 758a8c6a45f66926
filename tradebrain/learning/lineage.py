"""A bundle's lineage: the data, settings, seed and code it was trained from, as MLflow tags.

:class:`Lineage` is what :class:`~tradebrain.learning.registry.BundleRegistry` records with
every bundle (as the run tags ``lineage.*``, made by :meth:`Lineage.to_tags` and read back by
:meth:`Lineage.from_tags`). The helpers fill it in: :func:`frame_hash` fingerprints the
candles, :func:`public_settings` strips the secrets from a settings dump, and
:func:`code_version` names the code (package version plus git commit).

Nothing here imports MLflow; polars and numpy are imported by :func:`frame_hash` only.
"""

from __future__ import annotations

import functools
import hashlib
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, fields
from pathlib import Path
from typing import TYPE_CHECKING, Any

from tradebrain.exceptions import StoreError
from tradebrain.learning._mlflow import TAG_LIMIT

if TYPE_CHECKING:
    import polars as pl

_LINEAGE = "lineage."


@dataclass(frozen=True)
class Lineage:
    """Where a bundle came from: the data, the settings, the seed and the code.

    ``data_start``/``data_end`` are ISO timestamps of the first and last candle,
    ``data_hash`` is :func:`frame_hash` of the candles, ``settings`` is
    ``Settings.model_dump(mode="json")`` with secrets removed (see :func:`public_settings`),
    ``code_version`` is :func:`code_version`, and ``parent`` the version this bundle was
    retrained to replace, if any.
    """

    symbol: str
    timeframe: str
    source: str
    data_start: str
    data_end: str
    data_hash: str
    rows: int
    feature_sets: tuple[str, ...]
    settings: dict[str, Any]
    seed: int
    code_version: str
    parent: int | None = None

    def to_tags(self) -> dict[str, str]:
        """Return flat ``lineage.*`` tags (JSON for the feature sets and the settings).

        Settings longer than one MLflow tag are split over ``lineage.settings``,
        ``lineage.settings.1``, ... and joined again by :meth:`from_tags`.
        """
        tags = {
            f"{_LINEAGE}symbol": self.symbol,
            f"{_LINEAGE}timeframe": self.timeframe,
            f"{_LINEAGE}source": self.source,
            f"{_LINEAGE}data_start": self.data_start,
            f"{_LINEAGE}data_end": self.data_end,
            f"{_LINEAGE}data_hash": self.data_hash,
            f"{_LINEAGE}rows": str(int(self.rows)),
            f"{_LINEAGE}feature_sets": json.dumps(list(self.feature_sets)),
            f"{_LINEAGE}seed": str(int(self.seed)),
            f"{_LINEAGE}code_version": self.code_version,
        }
        if self.parent is not None:
            tags[f"{_LINEAGE}parent"] = str(int(self.parent))
        text = json.dumps(self.settings, sort_keys=True)
        pieces = [text[i : i + TAG_LIMIT] for i in range(0, len(text), TAG_LIMIT)] or [""]
        for i, piece in enumerate(pieces):
            tags[f"{_LINEAGE}settings" + (f".{i}" if i else "")] = piece
        return tags

    @classmethod
    def from_tags(cls, tags: Mapping[str, str]) -> Lineage:
        """Rebuild a lineage from the tags :meth:`to_tags` made (other tags are ignored).

        Raises
        ------
        StoreError
            When a ``lineage.*`` tag is missing or malformed.
        """
        names = [f.name for f in fields(cls) if f.name != "parent"]
        missing = [n for n in names if f"{_LINEAGE}{n}" not in tags]
        if missing:
            raise StoreError(
                f"the lineage tags lack {', '.join(_LINEAGE + n for n in missing)}; the run "
                "was not registered by tradebrain's BundleRegistry.register"
            )
        text, i = tags[f"{_LINEAGE}settings"], 1
        while f"{_LINEAGE}settings.{i}" in tags:
            text, i = text + tags[f"{_LINEAGE}settings.{i}"], i + 1
        parent = tags.get(f"{_LINEAGE}parent")
        try:
            return cls(
                symbol=tags[f"{_LINEAGE}symbol"],
                timeframe=tags[f"{_LINEAGE}timeframe"],
                source=tags[f"{_LINEAGE}source"],
                data_start=tags[f"{_LINEAGE}data_start"],
                data_end=tags[f"{_LINEAGE}data_end"],
                data_hash=tags[f"{_LINEAGE}data_hash"],
                rows=int(tags[f"{_LINEAGE}rows"]),
                feature_sets=tuple(json.loads(tags[f"{_LINEAGE}feature_sets"])),
                settings=json.loads(text) if text else {},
                seed=int(tags[f"{_LINEAGE}seed"]),
                code_version=tags[f"{_LINEAGE}code_version"],
                parent=int(parent) if parent else None,
            )
        except ValueError as error:  # json.JSONDecodeError is a ValueError
            raise StoreError(
                f"a lineage tag is malformed ({error}); was it edited by hand?"
            ) from error


def frame_hash(candles: pl.DataFrame) -> str:
    """Return the sha256 (hex) of a frame's column names, types and values.

    The same data gives the same hash, however it is chunked or sliced: numeric and temporal
    columns are hashed as little-endian physical values plus their null mask, other columns
    as JSON text.
    """
    import numpy as np
    import polars as pl

    digest = hashlib.sha256(f"rows={candles.height}\n".encode())
    for column in candles.get_columns():
        digest.update(f"{column.name}\0{column.dtype}\0".encode())
        physical = column.to_physical()
        plain = (pl.Boolean, pl.Float32, pl.Float64, pl.Int8, pl.Int16, pl.Int32, pl.Int64,
                 pl.UInt8, pl.UInt16, pl.UInt32, pl.UInt64)  # fmt: skip
        if physical.dtype in plain:
            values = physical.fill_null(0).to_numpy()
            little = np.ascontiguousarray(values, dtype=values.dtype.newbyteorder("<"))
            digest.update(little.tobytes())
            digest.update(column.is_null().to_numpy().tobytes())
        else:
            digest.update(json.dumps(column.to_list(), default=str).encode())
    return digest.hexdigest()


def code_version() -> str:
    """Return ``tradebrain.__version__``, plus ``+g<sha>`` (12 hex) in a git checkout.

    The commit is read from the ``.git`` folder beside the package (no ``git`` process).
    """
    from tradebrain import __version__

    sha = _git_commit(Path(__file__).resolve().parents[2])
    return f"{__version__}+g{sha[:12]}" if sha else __version__


def public_settings(settings: Mapping[str, Any]) -> dict[str, Any]:
    """Return a JSON copy of a settings dump without its secrets (for :attr:`Lineage.settings`).

    A key naming a secret (``token``, ``secret``, ``password``, ``api_key``) is dropped at any
    depth.
    """
    secret = re.compile(r"token|secret|password|api_key|apikey", re.IGNORECASE)

    def clean(value: Any) -> Any:
        if isinstance(value, Mapping):
            return {str(k): clean(v) for k, v in value.items() if not secret.search(str(k))}
        if isinstance(value, list | tuple):
            return [clean(v) for v in value]
        return value

    cleaned: dict[str, Any] = json.loads(json.dumps(clean(settings), default=str))
    return cleaned


@functools.cache
def _git_commit(root: Path) -> str | None:
    """Return the commit checked out at ``root`` (read from ``.git``), or None."""
    try:
        git = root / ".git"
        if git.is_file():  # a worktree or submodule: "gitdir: <path>"
            git = (root / git.read_text().strip().removeprefix("gitdir:").strip()).resolve()
        head = (git / "HEAD").read_text().strip()
        if not head.startswith("ref:"):
            return head if re.fullmatch(r"[0-9a-f]{40,64}", head) else None
        ref = head.removeprefix("ref:").strip()
        common = git
        if (git / "commondir").is_file():
            common = (git / (git / "commondir").read_text().strip()).resolve()
        for base in (git, common):
            if (base / ref).is_file():
                return (base / ref).read_text().strip() or None
        for line in (common / "packed-refs").read_text().splitlines():
            sha, _, name = line.partition(" ")
            if name == ref:
                return sha
    except OSError:
        return None
    return None


__all__ = ["Lineage", "code_version", "frame_hash", "public_settings"]
