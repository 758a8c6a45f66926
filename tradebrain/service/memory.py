"""What the runner remembers between candles, saved with each step and signed.

The engines' ATRs, the brains' smoothers and panic history and risk's policy are plain Python
objects; they are pickled so a restarted run decides exactly as an uninterrupted one. A pickle
runs code when loaded, so the blob carries an HMAC made with a key that only this installation
has (a file beside the service's models, created once with mode 0600): a state database that
someone else could write is never unpickled here.
"""

from __future__ import annotations

import base64
import hmac
import os
import pickle
import secrets
from pathlib import Path
from typing import Any

_DIGEST = "sha256"
_SIZE = 32


class SignedMemory:
    """Packs objects into signed text, and unpacks only what this key signed."""

    def __init__(self, key_path: Path) -> None:
        self.key_path = key_path
        self._key: bytes | None = None

    def pack(self, value: Any) -> str:
        """Return ``value`` pickled and signed, as ASCII text."""
        packed = pickle.dumps(value)
        return base64.b64encode(hmac.digest(self._secret(), packed, _DIGEST) + packed).decode()

    def unpack(self, text: str) -> Any | None:
        """Return what :meth:`pack` packed, or None when the signature is not this key's."""
        raw = base64.b64decode(text)
        signature, packed = raw[:_SIZE], raw[_SIZE:]
        if not hmac.compare_digest(signature, hmac.digest(self._secret(), packed, _DIGEST)):
            return None
        return pickle.loads(packed)

    def _secret(self) -> bytes:
        if self._key is None:
            path = self.key_path
            if not path.exists():
                path.parent.mkdir(parents=True, exist_ok=True)
                descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
                with os.fdopen(descriptor, "wb") as file:
                    file.write(secrets.token_bytes(_SIZE))
            self._key = path.read_bytes()
        return self._key
