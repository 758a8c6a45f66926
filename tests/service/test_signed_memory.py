"""The runner's memory is unpickled only when this installation signed it."""

from __future__ import annotations

import base64
import os
import pickle
import stat
from pathlib import Path

from tradebrain.service.memory import SignedMemory


class Boom:
    def __reduce__(self) -> tuple[object, tuple[str]]:
        return (os.system, ("echo pwned > /dev/null",))


def test_what_this_key_packed_comes_back_equal(tmp_path: Path) -> None:
    memory = SignedMemory(tmp_path / ".key")
    value = {"engines": {"BTC/USDT": {"atr": 1.5, "bar": 7}}, "policy": [1, 2, 3]}
    assert memory.unpack(memory.pack(value)) == value
    assert stat.S_IMODE((tmp_path / ".key").stat().st_mode) == 0o600


def test_a_blob_signed_by_another_installation_is_never_unpickled(tmp_path: Path) -> None:
    theirs = SignedMemory(tmp_path / "their.key").pack({"x": 1})
    assert SignedMemory(tmp_path / "our.key").unpack(theirs) is None


def test_a_forged_blob_with_a_bad_signature_is_never_unpickled(tmp_path: Path) -> None:
    forged = base64.b64encode(b"\0" * 32 + pickle.dumps(Boom())).decode()
    assert SignedMemory(tmp_path / ".key").unpack(forged) is None
