"""The national tier's privacy transform: keyed pseudonyms, identifiers removed. Pure.

- health ids (``health_id``, ``mother_health_id``, ``child_health_id``) and the record key of
  person-centred records → ``HMAC-SHA256(key, "health_id:" + id)``, hex, 32 characters with a
  ``p`` prefix: the same person gets the same pseudonym in every record, so national analysts
  can still count distinct people and link a birth to the child's record;
- ``citizen_id`` → its own pseudonym domain (``citizen_id:``);
- ``record_id`` of person-centred records → ``<pseudonym of the health id>:<HMAC of the
  record id, 20 hex>`` (the station's local id may be free text);
- ``encounter_local_id`` (``medicine_dispensed`` → its visit) → the local part of that
  encounter's national record id, so the link survives and the local id does not;
- removed: ``full_name``, ``phone``, ``street_address`` and free text (``referral.reason``);
- ``birth_date`` → ``birth_month`` (``YYYY-MM``, kept for age).

Resource snapshots carry no personal data and pass unchanged (``pseudonymised`` is still set).
The key is a ``SecretStr`` held privately; ``repr`` never shows it.
"""

from __future__ import annotations

import hmac
from collections.abc import Mapping
from typing import Any, Final

from pydantic import SecretStr

from schemas.registry import RESOURCE_OF, RecordType

__all__ = ["DROPPED_FIELDS", "HEALTH_ID_FIELDS", "Pseudonymiser"]

HEALTH_ID_FIELDS: Final = frozenset({"health_id", "mother_health_id", "child_health_id"})
CITIZEN_ID_FIELDS: Final = frozenset({"citizen_id"})
DROPPED_FIELDS: Final = frozenset({"full_name", "phone", "street_address", "reason"})
MONTH_FIELDS: Final = {"birth_date": "birth_month"}
#: A field naming another record of the same person by its local id (may be free text).
LINK_FIELD: Final = "encounter_local_id"
_RESOURCE_TYPES: Final = frozenset(rt.value for rt in RESOURCE_OF)
_PERSON: Final = RecordType.PERSON.value


class Pseudonymiser:
    """Keyed pseudonyms and the national transform of a tier record (a dict with the fields of
    :class:`~schemas.tier.TierRecord`)."""

    __slots__ = ("_key",)

    def __init__(self, key: SecretStr | str | bytes) -> None:
        raw = key.get_secret_value() if isinstance(key, SecretStr) else key
        self._key = raw.encode() if isinstance(raw, str) else bytes(raw)
        if not self._key:
            raise ValueError("the pseudonym key must not be empty")

    def __repr__(self) -> str:
        return "Pseudonymiser(key=**********)"

    def pseudonym(self, value: str, domain: str = "health_id") -> str:
        """``p`` + 32 hex characters of HMAC-SHA256(key, domain:value)."""
        digest = hmac.digest(self._key, f"{domain}:{value}".encode(), "sha256")
        return "p" + digest[:16].hex()

    def data(self, data: Mapping[str, Any]) -> dict[str, Any]:
        """The after-image with identifiers pseudonymised or removed (recursively)."""
        out: dict[str, Any] = {}
        for name, value in data.items():
            if name in DROPPED_FIELDS:
                continue
            if name in HEALTH_ID_FIELDS and isinstance(value, str):
                out[name] = self.pseudonym(value)
            elif name in CITIZEN_ID_FIELDS and isinstance(value, str):
                out[name] = self.pseudonym(value, "citizen_id")
            elif name in MONTH_FIELDS and isinstance(value, str):
                out[MONTH_FIELDS[name]] = value[:7]
            elif isinstance(value, Mapping):
                out[name] = self.data(value)
            elif isinstance(value, list):
                out[name] = [self.data(v) if isinstance(v, Mapping) else v for v in value]
            else:
                out[name] = value
        return out

    def national(self, record: Mapping[str, Any]) -> dict[str, Any]:
        """The pseudonymised copy of ``record`` (tier-record fields) for the national stream
        (a new dict, same field order; ``record`` is left as it is)."""
        out = dict(record)
        out["pseudonymised"] = True
        rt = record["record_type"]
        if rt in _RESOURCE_TYPES:
            return out
        key_p = self.pseudonym(record["record_key"])
        if rt == _PERSON:
            record_id = key_p
        else:
            record_id = f"{key_p}:{self.pseudonym(record['record_id'], 'record_id')[1:21]}"
        out["record_id"] = record_id
        out["record_key"] = key_p
        data = record["data"]
        out["data"] = self.data(data) if data is not None else None
        link = data.get(LINK_FIELD) if data is not None else None
        if isinstance(link, str) and out["data"] is not None:
            # a local id of another record of the person (medicine_dispensed → its visit):
            # the local part of that record's national id, so the link survives
            out["data"][LINK_FIELD] = self.pseudonym(f"{record['record_key']}:{link}", "record_id")[
                1:21
            ]
        return out
