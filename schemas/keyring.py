"""What the registries of signing keys share: the health workers' (:mod:`schemas.keys`) and
the approvers' (:mod:`schemas.approvers`).

A registry holds public keys by owner (a signer, an approver). An owner may have several keys
(rotation); each then has a ``key_id``, and what it signs names the key in its ``key_id``. A
revocation without ``key_id`` revokes every key of the owner. A key signs what was signed
from its ``valid_from`` on and received by the broker before its ``valid_to`` and before its
revocation: both ends are judged at the broker's receive time, which the signer cannot
choose, so backdating never extends a key's life.

Refused when a registry file is loaded (:func:`build_keys`): a repeated ``(owner, key_id)``,
an owner with several keys and no ``key_id`` on one, a public key registered twice, a
revocation naming no registered key, and what the registry itself adds (a signer's keys at
different stations, an approver's keys for different units or roles).

How a signature is checked against an owner's keys is :func:`schemas.signing.verify_with`.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from datetime import datetime
from typing import Protocol, Self, TypeVar

from pydantic import BaseModel, ValidationError

from schemas.reasons import ContractViolation

__all__ = ["RegisteredKey", "build_keys", "key_revoked", "key_usable", "parse_registry_file"]


class RegisteredKey(Protocol):
    """One public key of a registry (:class:`schemas.keys.SignerKey`,
    :class:`schemas.approvers.ApproverKey`)."""

    @property
    def owner(self) -> str: ...
    @property
    def public_key(self) -> bytes: ...
    @property
    def key_id(self) -> str | None: ...
    @property
    def valid_from(self) -> datetime | None: ...
    @property
    def valid_to(self) -> datetime | None: ...  # exclusive, judged at the receive time
    @property
    def revoked_at(self) -> datetime | None: ...

    def revoked(self, at: datetime) -> Self:
        """This key revoked from ``at`` on (the earlier revocation stands)."""
        ...


K = TypeVar("K", bound=RegisteredKey)
M = TypeVar("M", bound=BaseModel)


def key_revoked(key: RegisteredKey, received: datetime) -> bool:
    """Was ``key`` revoked when the broker received what it signed (at ``received``)?"""
    return key.revoked_at is not None and received >= key.revoked_at


def key_usable(key: RegisteredKey, signed: datetime, received: datetime) -> bool:
    """May ``key`` sign what was signed at ``signed`` and received at ``received``: signed
    from ``valid_from`` on, received before ``valid_to`` and before its revocation?"""
    return (
        (key.valid_from is None or signed >= key.valid_from)
        and (key.valid_to is None or received < key.valid_to)
        and not key_revoked(key, received)
    )


def build_keys(
    keys: Iterable[K],
    revocations: Iterable[tuple[str, str | None, datetime]],
    *,
    bad: Callable[[str], ContractViolation],
    conflict: Callable[[K, K], str | None],
) -> dict[str, tuple[K, ...]]:
    """Keys by owner with the ``(owner, key_id, revoked_at)`` revocations applied; the
    load-time checks of the module docstring. ``conflict(earlier, key)`` names what the
    registry refuses between two keys of one owner (``None``: nothing); ``bad`` makes the
    error of a refusal."""
    by_owner: dict[str, list[K]] = {}
    seen_public: dict[bytes, str] = {}
    for key in keys:
        if key.public_key in seen_public:
            raise bad(
                f"the public key of {key.owner} is also registered for "
                f"{seen_public[key.public_key]}"
            )
        seen_public[key.public_key] = key.owner
        same = by_owner.setdefault(key.owner, [])
        for other in same:
            problem = conflict(other, key)
            if problem is not None:
                raise bad(problem)
            if other.key_id == key.key_id:
                raise bad(f"{key.owner} is registered twice with key_id {key.key_id}")
            if other.key_id is None or key.key_id is None:
                raise bad(f"{key.owner} has several keys: each needs a key_id")
        same.append(key)
    for owner, key_id, revoked_at in revocations:
        found = by_owner.get(owner)
        if not found or (key_id is not None and all(k.key_id != key_id for k in found)):
            raise bad(f"revocation of {owner} {key_id or ''} names no registered key")
        by_owner[owner] = [
            k.revoked(revoked_at) if key_id is None or k.key_id == key_id else k for k in found
        ]
    return {owner: tuple(found) for owner, found in by_owner.items()}


def parse_registry_file(
    model: type[M], raw: bytes | str, bad: Callable[[str], ContractViolation]
) -> M:
    """The registry file ``raw`` as ``model`` (``bad`` naming the first problem when it is
    not one)."""
    try:
        return model.model_validate_json(raw)
    except ValidationError as exc:
        err = exc.errors(include_url=False)[0]
        where = ".".join(str(p) for p in err["loc"])
        raise bad(f"{where}: {err['msg']}") from None
