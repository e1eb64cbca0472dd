"""Secrets shown once and kept only as hashes: operators' API keys and sites' write keys."""

from __future__ import annotations

import hashlib
import secrets


def new_key(prefix: str, nbytes: int) -> str:
    """A fresh secret: ``prefix`` and ``nbytes`` random bytes, URL-safe."""
    return prefix + secrets.token_urlsafe(nbytes)


def hash_key(key: str) -> str:
    """What the store keeps of a key: its SHA-256 (keys are long and random, so no salt)."""
    return hashlib.sha256(key.encode("utf-8")).hexdigest()
