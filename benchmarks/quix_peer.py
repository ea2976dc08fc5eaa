"""The peer ``bench_streams`` measures the stream worker against: a Quix Streams 3.x app (what a
user might pick instead of faust) that decodes each signed station event, verifies its Ed25519
signature (PyNaCl, over the RFC 8785 form the project signs, :mod:`schemas.signing`) and routes
it to three topics (district, province, national), message by message.

It runs in its OWN virtualenv (quixstreams, PyNaCl, rfc8785, orjson only: ``bench_streams``
builds it under the project's state dir), so it imports nothing of the project and the project
does not depend on quixstreams. The signers' public keys come in a JSON file
(``{signer: base64 public key}``), the connection's librdkafka security settings in
``TUYEN_PEER_KAFKA`` (JSON).

``python quix_peer.py --broker B --topic T --out-prefix P --count N --group G --keys FILE``
prints ``rate=<events/s> cpu_us=<CPU µs per event> bad=<events that did not verify>`` once N events
were processed (both from the first event on, so the group join is excluded) and exits.
"""

from __future__ import annotations

import argparse
import base64
import json
import os
import time
from pathlib import Path
from typing import Any

import orjson
import rfc8785
from nacl.exceptions import BadSignatureError
from nacl.signing import VerifyKey
from quixstreams import Application  # type: ignore[import-not-found]

# the CloudEvents attributes that are signed (schemas.signing.signed_object)
SIGNED_ATTRIBUTES = ("id", "source", "type", "time", "dataschema", "subject")


def _cpu_s() -> float:
    t = os.times()
    return t.user + t.system


def _verifier(keys: dict[str, VerifyKey]) -> Any:
    """``check(value, key, timestamp, headers)``: the decoded, verified event as a dict with
    its tier codes, or ``None`` when it does not verify."""

    def check(value: bytes, key: Any, timestamp: int, headers: Any) -> dict[str, Any] | None:
        doc = orjson.loads(value)
        attrs = {n[3:]: v.decode() for n, v in headers or () if n.startswith("ce_")}
        signed = {a: attrs[a] for a in SIGNED_ATTRIBUTES}
        signed.update({k: v for k, v in doc.items() if k != "signature"})
        verify_key = keys.get(doc["signer"])
        if verify_key is None:
            return None
        try:
            verify_key.verify(rfc8785.dumps(signed), base64.b64decode(doc["signature"]))
        except BadSignatureError:
            return None
        commune = attrs["source"].rsplit("/", 1)[-1]
        doc["route"] = {"commune": commune, "id": attrs["id"]}
        return doc

    return check


def build(args: argparse.Namespace) -> Application:
    extra = json.loads(os.environ.get("TUYEN_PEER_KAFKA", "{}"))  # security settings only
    app = Application(
        broker_address=args.broker,
        consumer_group=args.group,
        auto_offset_reset="earliest",
        consumer_extra_config=extra,
        producer_extra_config={**extra, "linger.ms": 20, "compression.type": "lz4"},
        use_changelog_topics=False,
        loglevel="WARNING",
    )
    stored = json.loads(Path(args.keys).read_text(encoding="utf-8"))
    keys = {s: VerifyKey(base64.b64decode(k)) for s, k in stored.items()}
    src = app.topic(args.topic, value_deserializer="bytes", key_deserializer="bytes")
    tiers = [
        app.topic(f"{args.out_prefix}{t}", value_serializer="json", key_serializer="bytes")
        for t in ("district", "province", "national")
    ]
    seen = {"n": 0, "bad": 0}
    started: list[float] = []  # [wall clock, CPU seconds] at the first event
    check = _verifier(keys)

    def count(doc: dict[str, Any] | None) -> bool:
        if not started:
            started.extend((time.perf_counter(), _cpu_s()))
        seen["n"] += 1
        if doc is None:
            seen["bad"] += 1
        if seen["n"] >= args.count:
            counted = max(1, seen["n"] - 1)
            rate = counted / max(1e-9, time.perf_counter() - started[0])
            cpu_us = (_cpu_s() - started[1]) / counted * 1e6
            print(f"rate={rate:.1f} cpu_us={cpu_us:.1f} bad={seen['bad']}", flush=True)
            app.stop()
        return doc is not None

    sdf = app.dataframe(src)
    sdf = sdf.apply(check, metadata=True).filter(count)
    for tier in tiers:
        sdf.to_topic(tier)
    return app


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--broker", required=True)
    parser.add_argument("--topic", required=True)
    parser.add_argument("--out-prefix", required=True)
    parser.add_argument("--count", type=int, required=True)
    parser.add_argument("--group", required=True)
    parser.add_argument("--keys", required=True)
    app = build(parser.parse_args())
    app.run()


if __name__ == "__main__":
    main()
