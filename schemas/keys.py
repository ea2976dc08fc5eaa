"""The key registry: health workers' Ed25519 public keys, the station each belongs to, and
when each key is valid.

Two implementations of :class:`KeyRegistry`:

- :class:`StaticKeyRegistry`: reference data, loadable from a JSON file
  ``{"keys": [{"signer", "station", "public_key" (base64), "valid_from"?, "valid_to"?,
  "roles"?}]}``.
- :class:`DevKeyRegistry`: deterministic keys for development, tests and the simulator.
  Signer ids are ``hw-<station>-<n>`` (``n`` in 1..``signers_per_station``); the private
  key seed is ``SHA-256(seed || signer id)``. Keys are derived lazily and cached, so the
  simulator and the validator agree without shipping tens of thousands of keys.
  ``hw-<station>-1`` is the station head. Never use it in production: anyone who knows the
  seed can sign.

Roles: a key may carry roles; ``station_head`` (:data:`STATION_HEAD`) is the one a station's
monthly report submission needs (:func:`require_role`).
"""

from __future__ import annotations

import base64
import hashlib
import re
from dataclasses import dataclass
from datetime import datetime
from functools import lru_cache
from pathlib import Path
from typing import Any, Final, Protocol

import orjson
from nacl.signing import SigningKey

from schemas.reasons import ContractViolation, Reason

_DEV_SIGNER_RE = re.compile(r"^hw-([0-9]{5})-([1-9][0-9]{0,3})$")


#: Seed of the development key registry shared by the simulator and the validator.
DEV_KEY_SEED: Final = b"tuyen-dev-key-seed-v1"
#: The role that signs a station's monthly report submission (the trạm trưởng).
STATION_HEAD: Final = "station_head"


@dataclass(frozen=True, slots=True)
class SignerKey:
    """One health worker's public key."""

    signer: str
    station: str
    public_key: bytes  # 32 bytes, raw Ed25519
    valid_from: datetime | None = None
    valid_to: datetime | None = None  # exclusive
    roles: frozenset[str] = frozenset()

    def valid_at(self, t: datetime) -> bool:
        return (self.valid_from is None or t >= self.valid_from) and (
            self.valid_to is None or t < self.valid_to
        )


class KeyRegistry(Protocol):
    """Where verifiers find public keys."""

    def lookup(self, signer: str) -> SignerKey | None:
        """The signer's key, or ``None`` when the signer is not registered."""
        ...


class StaticKeyRegistry:
    """A fixed set of keys (reference data)."""

    def __init__(self, keys: list[SignerKey]) -> None:
        self._keys = {k.signer: k for k in keys}

    def lookup(self, signer: str) -> SignerKey | None:
        return self._keys.get(signer)

    def __len__(self) -> int:
        return len(self._keys)

    @classmethod
    def from_json(cls, raw: bytes | str) -> StaticKeyRegistry:
        """Parse the JSON document described in the module docstring."""
        try:
            doc = orjson.loads(raw)
            keys = [_key_from(entry) for entry in doc["keys"]]
        except (orjson.JSONDecodeError, KeyError, TypeError, ValueError) as exc:
            raise ContractViolation(Reason.SCHEMA_VIOLATION, f"bad key registry: {exc}") from None
        return cls(keys)

    @classmethod
    def load(cls, path: Path) -> StaticKeyRegistry:
        return cls.from_json(path.read_bytes())

    def to_json(self) -> bytes:
        return orjson.dumps(
            {
                "keys": [
                    {
                        "signer": k.signer,
                        "station": k.station,
                        "public_key": base64.b64encode(k.public_key).decode(),
                        "valid_from": k.valid_from.isoformat() if k.valid_from else None,
                        "valid_to": k.valid_to.isoformat() if k.valid_to else None,
                        "roles": sorted(k.roles),
                    }
                    for k in self._keys.values()
                ]
            },
            option=orjson.OPT_INDENT_2,
        )


def _time(v: Any) -> datetime | None:
    if v is None:
        return None
    t = datetime.fromisoformat(v)
    if t.tzinfo is None:
        raise ValueError(f"key validity {v!r} needs an offset")
    return t


def _key_from(entry: dict[str, Any]) -> SignerKey:
    pub = base64.b64decode(entry["public_key"], validate=True)
    if len(pub) != 32:
        raise ValueError(f"public key of {entry['signer']} is not 32 bytes")
    return SignerKey(
        signer=str(entry["signer"]),
        station=str(entry["station"]),
        public_key=pub,
        valid_from=_time(entry.get("valid_from")),
        valid_to=_time(entry.get("valid_to")),
        roles=frozenset(str(r) for r in entry.get("roles") or ()),
    )


def dev_signing_key(seed: bytes, signer: str) -> SigningKey:
    """The development private key of ``signer``: Ed25519 seed = SHA-256(seed || signer)."""
    return SigningKey(hashlib.sha256(seed + signer.encode()).digest())


def dev_signer(station: str, n: int = 1) -> str:
    """The development signer id ``hw-<station>-<n>``."""
    return f"hw-{station}-{n}"


class DevKeyRegistry:
    """Deterministic development keys for every station (see the module docstring)."""

    def __init__(self, seed: bytes, *, signers_per_station: int = 8) -> None:
        self.seed = seed
        self.signers_per_station = signers_per_station
        self._lookup = lru_cache(maxsize=65536)(self._derive)

    def _derive(self, signer: str) -> SignerKey | None:
        m = _DEV_SIGNER_RE.match(signer)
        if m is None or int(m.group(2)) > self.signers_per_station:
            return None
        pub = bytes(dev_signing_key(self.seed, signer).verify_key)
        roles = frozenset({STATION_HEAD}) if m.group(2) == "1" else frozenset()
        return SignerKey(signer=signer, station=m.group(1), public_key=pub, roles=roles)

    def lookup(self, signer: str) -> SignerKey | None:
        return self._lookup(signer)

    def signing_key(self, signer: str) -> SigningKey:
        """The private key of a registered development signer."""
        if self.lookup(signer) is None:
            raise ContractViolation(
                Reason.SIGNER_NOT_REGISTERED, f"{signer} is not a development signer"
            )
        return dev_signing_key(self.seed, signer)


def require_role(registry: KeyRegistry, signer: str, role: str) -> None:
    """Raise ``signer_not_authorised`` unless ``signer``'s registered key has ``role``
    (call after the signature verified)."""
    key = registry.lookup(signer)
    if key is None or role not in key.roles:
        raise ContractViolation(
            Reason.SIGNER_NOT_AUTHORISED,
            f"{signer} does not hold the role {role}",
            field="signer",
        )
