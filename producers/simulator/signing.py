"""Signing many changes fast: raw libsodium calls, optionally in a few threads (PyNaCl's
cffi bindings release the GIL, so two threads sign almost twice as fast as one)."""

from __future__ import annotations

import base64
import hashlib
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor

from nacl.bindings import crypto_sign, crypto_sign_seed_keypair

from schemas import RecordChange, canonical_bytes


class DevSigner:
    """Development keys (``schemas.DevKeyRegistry`` derivation), cached per signer."""

    def __init__(self, seed: bytes, threads: int = 2) -> None:
        self.seed = seed
        self._secret: dict[str, bytes] = {}
        self._pool = ThreadPoolExecutor(threads) if threads > 1 else None
        self.threads = threads

    def secret(self, signer: str) -> bytes:
        sk = self._secret.get(signer)
        if sk is None:
            seed = hashlib.sha256(self.seed + signer.encode()).digest()
            sk = crypto_sign_seed_keypair(seed)[1]
            self._secret[signer] = sk
        return sk

    def sign_many(self, changes: Sequence[RecordChange]) -> list[RecordChange]:
        """Each change signed by its own signer's development key."""
        jobs = [(canonical_bytes(c), self.secret(c.signer)) for c in changes]
        if self._pool is None or len(jobs) < 256:
            sigs = _sign_chunk(jobs)
        else:
            size = -(-len(jobs) // (self.threads * 2))
            parts = [jobs[i : i + size] for i in range(0, len(jobs), size)]
            sigs = [s for part in self._pool.map(_sign_chunk, parts) for s in part]
        return [c.model_copy(update={"signature": s}) for c, s in zip(changes, sigs, strict=True)]

    def submit(self, jobs: Sequence[tuple[bytes, str]]) -> Callable[[], list[str]]:
        """Start signing ``(canonical bytes, signer)`` pairs in the pool; call the returned
        function to get the base64 signatures (in order)."""
        pairs = [(msg, self.secret(signer)) for msg, signer in jobs]
        if self._pool is None or len(pairs) < 256:
            sigs = _sign_chunk(pairs)
            return lambda: sigs
        size = -(-len(pairs) // (self.threads * 2))
        futures = [
            self._pool.submit(_sign_chunk, pairs[i : i + size]) for i in range(0, len(pairs), size)
        ]
        return lambda: [s for f in futures for s in f.result()]

    def close(self) -> None:
        if self._pool is not None:
            self._pool.shutdown()


def _sign_chunk(jobs: Sequence[tuple[bytes, bytes]]) -> list[str]:
    b64 = base64.b64encode
    return [b64(crypto_sign(msg, sk)[:64]).decode() for msg, sk in jobs]
