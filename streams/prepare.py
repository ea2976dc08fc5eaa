"""The stateless part of stage 2: pseudonymise, encode the tier values, compute the record's
aggregate contribution. Pure.

:meth:`streams.pipeline.BatchProcessor.finish` prepares each accepted event, then admits the
:class:`Prepared` fields against the record state (:func:`streams.validate.admit_fields`) and
routes the ready bytes.
"""

from __future__ import annotations

from typing import Any, NamedTuple

import orjson

from streams.aggregate import contribution
from streams.pseudonymise import Pseudonymiser
from streams.validate import Accepted

__all__ = ["Prepared", "prepare"]


class Prepared(NamedTuple):
    """An accepted event, ready to be admitted against the record state and routed."""

    record_id: str
    event_id: str
    version: int
    delete: bool
    digest: str  # a prefix of the signature: equal digests mean byte-identical content
    station: str
    station_seq: int
    contribution: Any  # JSON-shaped, see streams.aggregate.contribution
    key: bytes  # record key of the valid, district and province outputs
    value: bytes  # the tier record (JSON) of the valid, district and province outputs
    national_record_id: str
    national_key: bytes
    national_value: bytes  # the pseudonymised tier record (JSON)


def prepare(accepted: Accepted, pseudonymiser: Pseudonymiser) -> Prepared:
    """Everything stage 2 needs from an accepted event, computed without the state."""
    record = accepted.record
    national = pseudonymiser.national(record)
    return Prepared(
        record["record_id"],
        record["event_id"],
        record["record_version"],
        record["op"] == "delete",
        accepted.signature[:24],
        record["station_code"],
        record["station_seq"],
        contribution(record),
        record["record_key"].encode(),
        orjson.dumps(record),
        national["record_id"],
        national["record_key"].encode(),
        orjson.dumps(national),
    )
