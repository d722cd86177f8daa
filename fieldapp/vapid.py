"""The server's VAPID key pair (RFC 8292), kept as a PEM file under instance/."""

import base64
import os
from pathlib import Path

from cryptography.hazmat.primitives import serialization
from py_vapid import Vapid


def load_or_create(path: str) -> Vapid:
    """Load the private key at `path`, creating it (mode 0600) when missing."""
    key_file = Path(path)
    if key_file.exists():
        return Vapid.from_file(str(key_file))
    key_file.parent.mkdir(parents=True, exist_ok=True)
    vapid = Vapid()
    vapid.generate_keys()
    # Write to a temporary name first so a crash never leaves half a key behind.
    tmp = key_file.with_suffix(".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as fh:
        fh.write(vapid.private_pem())
    tmp.replace(key_file)
    return vapid


def public_key_b64(vapid: Vapid) -> str:
    """The public key as the browser's applicationServerKey wants it: URL-safe base64, no pad."""
    raw = vapid.public_key.public_bytes(
        serialization.Encoding.X962, serialization.PublicFormat.UncompressedPoint
    )
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()
