"""The clinicians' patient summary in the portal (``/patient``) over the real store:
scope = the clinician's facility's province (a station or a registered hospital), a stated
purpose, and exactly one access-log entry per look-up, in the portal's hash chain."""

from __future__ import annotations

import asyncio
import base64
import html
import re
import secrets
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date
from typing import Any

import httpx
import orjson
import pytest
from fhir.resources.R4B.bundle import Bundle
from pydantic import SecretStr
from starlette.types import ASGIApp

from schemas.hierarchy import Hierarchy
from sinks.portal.config import PortalConfig
from sinks.portal.service import Portal
from sinks.portal.web.app import create_app
from sinks.roots import StoreRoots
from tests.portal.conftest import OTHER_PROVINCE, PROVINCE, StoreData

HOSPITAL = "90001"  # a registered facility of PROVINCE (facility registry)
PURPOSE = "continuity of care: patient seen today"


@dataclass
class Setup:
    portal: Portal
    app: ASGIApp
    tokens: dict[str, str]
    health_id: str
    home: str  # the person's station


def _key() -> SecretStr:
    return SecretStr(base64.b64encode(secrets.token_bytes(32)).decode())


def _person(store: StoreData) -> tuple[str, str]:
    """A person of the simulated province with at least one visit: (health id, station)."""
    live = store.sim.truth.live_records()
    seen = {r.data["health_id"] for (rt, _), r in live.items() if rt == "encounter" and r.data}
    return next(
        (rid, r.station)
        for (rt, rid), r in sorted(live.items())
        if rt == "person" and r.data and rid in seen
    )


@pytest.fixture(scope="module", name="s")
def portal_with_clinicians(
    portal_store: StoreData, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Setup]:
    state = tmp_path_factory.mktemp("patient-portal")
    registry = state.parent / "facilities.csv"
    registry.write_text(
        "ma_cskcb,source,name,province,valid_from,valid_to\n"
        f"{PROVINCE}901,{HOSPITAL},Bệnh viện đa khoa tỉnh Lai Châu,{PROVINCE},,\n",
        encoding="utf-8",
    )
    roots = StoreRoots.under(str(portal_store.root))  # the owners' roots build_store wrote
    config = PortalConfig(
        state_dir=state,
        store_root=str(portal_store.root),
        province_root=roots.province,
        national_root=roots.national,
        facilities=registry,
        session_key=_key(),
        audit_key=_key(),
        secure_cookies=False,
    )
    portal = Portal(config)
    health_id, home = _person(portal_store)
    elsewhere = Hierarchy.default().children(OTHER_PROVINCE, date.today())[0]
    other_station = portal.h.children(elsewhere.code, date.today())[0].code
    accounts = {  # name -> (scope, roles, facility)
        "doc": (f"station:{home}", ["clinician"], home),
        "hosp": (f"province:{PROVINCE}", ["clinician"], HOSPITAL),
        "far": (f"station:{other_station}", ["clinician"], other_station),
        "ana": (f"province:{PROVINCE}", ["analyst"], None),
    }
    tokens = {}
    for name, (scope, roles, facility) in accounts.items():
        portal.accounts.add(name, f"{name}-password-long", scope, roles, facility=facility)
        tokens[name] = portal.tokens.create(name, "test")[1]
    yield Setup(portal, create_app(portal), tokens, health_id, home)
    portal.close()


def call(s: Setup, method: str, url: str, who: str, **kwargs: Any) -> httpx.Response:
    """One request to the portal's ASGI app (in process), as ``who`` (API token)."""

    async def go() -> httpx.Response:
        transport = httpx.ASGITransport(app=s.app)
        async with httpx.AsyncClient(transport=transport, base_url="http://127.0.0.1") as c:
            headers = {"authorization": f"Bearer {s.tokens[who]}"}
            return await c.request(method, url, headers=headers, **kwargs)

    return asyncio.run(go())


def lookup(s: Setup, who: str, health_id: str, purpose: str = PURPOSE) -> httpx.Response:
    return call(s, "POST", "/patient", who, data={"health_id": health_id, "purpose": purpose})


def bundle_of(page: str) -> dict[str, Any]:
    found = re.search(r"<pre>(.*?)</pre>", page, re.S)
    assert found, page[-2000:]
    doc: dict[str, Any] = orjson.loads(html.unescape(found.group(1)))
    return doc


def summary_entries(s: Setup) -> list[dict[str, object]]:
    return [e for e in s.portal.log.read() if e.get("action") == "patient:summary"]


def test_a_clinician_gets_the_summary_of_a_person_of_the_facilitys_province(s: Setup) -> None:
    before = len(summary_entries(s))
    for who in ("doc", "hosp"):  # the person's own station, and a hospital of the province
        r = lookup(s, who, s.health_id)
        assert r.status_code == 200, r.text[-2000:]
        doc = bundle_of(r.text)
        Bundle.model_validate(doc)
        patients = [e["resource"] for e in doc["entry"]
                    if e["resource"]["resourceType"] == "Patient"]  # fmt: skip
        assert [i["value"] for p in patients for i in p["identifier"]][:1] == [s.health_id]
    entries = summary_entries(s)[before:]
    assert [(e["account"], e["facility"], e["outcome"]) for e in entries] == [
        ("doc", s.home, "allowed"),
        ("hosp", HOSPITAL, "allowed"),
    ]
    for e in entries:
        assert e["purpose"] == PURPOSE and e["subject"] == s.health_id
        assert e["unit"] == PROVINCE and e["kind"] == "patient_summary" and e["via"] == "token"
        assert s.home in e["stations"]  # type: ignore[operator]
    assert s.portal.log.verify().ok


def test_a_clinician_elsewhere_reads_only_the_own_province(s: Setup) -> None:
    before = len(summary_entries(s))
    r = lookup(s, "far", s.health_id)
    assert r.status_code == 404 and "<pre>" not in r.text
    (entry,) = summary_entries(s)[before:]
    assert (entry["outcome"], entry["unit"]) == ("not_found", OTHER_PROVINCE)


def test_every_look_up_states_its_purpose_and_is_logged_even_when_refused(s: Setup) -> None:
    before = len(summary_entries(s))
    assert lookup(s, "doc", s.health_id, purpose="  ").status_code == 400
    assert lookup(s, "doc", "12").status_code == 400
    assert lookup(s, "ana", s.health_id).status_code == 403  # no clinician role
    outcomes = [(e["account"], e["outcome"]) for e in summary_entries(s)[before:]]
    assert outcomes == [("doc", "error"), ("doc", "error")]  # the analyst never reached it


def test_the_health_id_never_travels_in_a_url(s: Setup) -> None:
    before = len(summary_entries(s))
    r = call(s, "GET", f"/patient?health_id={s.health_id}", "doc")
    assert r.status_code == 200 and "<pre>" not in r.text and 'method="post"' in r.text
    assert len(summary_entries(s)) == before
