"""Sign-off and lock: signed decisions, who may take them, the month's states, and the
reports "as submitted" and "latest" with the revisions since."""

from __future__ import annotations

import base64
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from nacl.signing import SigningKey

from schemas.hierarchy import VN_TZ, Hierarchy
from schemas.keys import DEV_KEY_SEED
from schemas.reasons import ContractViolation, Reason
from schemas.signoff import (
    Action,
    DevApproverRegistry,
    check_decision,
    dev_approver,
    make_decision,
    parse_decision,
)
from sinks.reports import AccessDenied, AccessLog, BadRequest
from sinks.signoff.service import Signoff, SignoffRefused
from tests.report_store import StorePublisher, Stores, change

A, A2, A3 = "00004", "00008", "00025"  # KV001, Hà Nội (01)
B = "00070"  # KV002
REG = DevApproverRegistry(DEV_KEY_SEED)
H = Hierarchy.default()


def t(y: int, m: int, d: int, hh: int = 9) -> datetime:
    return datetime(y, m, d, hh, tzinfo=VN_TZ)


def key(approver: str) -> Any:
    return REG.signing_key(approver)


#: when approver binh's key 2025 is revoked in :func:`rotated_approver`'s registry
REVOKED = datetime(2026, 11, 20, tzinfo=UTC)


def approver_entry(k: SigningKey, key_id: str) -> dict[str, Any]:
    """Approver binh's key ``k`` (``key_id``) in an approvers' registry file."""
    public = base64.b64encode(bytes(k.verify_key)).decode()
    return {"approver": "binh", "unit": "KV001", "roles": ["approve"], "public_key": public,
            "key_id": key_id}  # fmt: skip


def rotated_approver(old: SigningKey, new: SigningKey) -> dict[str, Any]:
    """A registry file where binh rotated from key 2025 (``old``, revoked at
    :data:`REVOKED`) to key 2026 (``new``)."""
    return {
        "approvers": [approver_entry(old, "2025"), approver_entry(new, "2026")],
        "revocations": [{"approver": "binh", "key_id": "2025", "revoked_at": REVOKED.isoformat()}],
    }


def test_a_decision_is_signed_and_only_the_unit_above_may_take_it() -> None:
    sup = dev_approver("KV001")
    good = make_decision(
        Action.APPROVE, period="2026-10", province="01", station=A, unit="KV001", approver=sup
    ).signed(key(sup))
    check_decision(parse_decision(good.to_json()), REG, H)
    by_province = make_decision(
        "approve", period="2026-10", province="01", station=A, unit="01",
        approver=dev_approver("01"),
    ).signed(key(dev_approver("01")))  # fmt: skip
    check_decision(by_province, REG, H)
    tampered = good.model_copy(update={"station": A2})
    with pytest.raises(ContractViolation) as exc:
        check_decision(tampered, REG, H)
    assert exc.value.reason is Reason.TAMPERED
    other = make_decision(
        "approve", period="2026-10", province="01", station=B, unit="KV001", approver=sup
    ).signed(key(sup))  # B is under KV002
    with pytest.raises(ContractViolation) as exc:
        check_decision(other, REG, H)
    assert exc.value.reason is Reason.SIGNER_NOT_AUTHORISED
    lock = make_decision("lock", period="2026-10", province="01", unit="KV001", approver=sup)
    with pytest.raises(ContractViolation) as exc:
        check_decision(lock.signed(key(sup)), REG, H)  # a district does not lock
    assert exc.value.reason is Reason.SIGNER_NOT_AUTHORISED
    forged = good.model_copy(update={"unit": "KV002", "approver": dev_approver("KV002")})
    with pytest.raises(ContractViolation):
        check_decision(forged, REG, H)
    with pytest.raises(ContractViolation) as exc:
        parse_decision(b'{"action": "approve"}')
    assert exc.value.reason is Reason.SCHEMA_VIOLATION


def scenario() -> list[dict[str, Any]]:
    enc = {"health_id": "2000000001", "encounter_date": "2026-10-10", "diagnoses": ["J06"]}
    ch = [
        change(H, "encounter", f"2000000001:e{i}", enc, station, t(2026, 10, 10))
        for i, station in enumerate((A, A, A2, B))
    ]
    # A and B submit on time, A2 late; A3 never
    for station, at in ((A, t(2026, 11, 3)), (A2, t(2026, 11, 20)), (B, t(2026, 11, 4))):
        ch.append(change(H, "report_submission", f"{station}:submission:2026-10",
                         {"period": "2026-10"}, station, at))  # fmt: skip
    return ch


class Clock:
    def __init__(self, start: datetime) -> None:
        self.now = start

    def __call__(self) -> datetime:
        return self.now


@pytest.fixture
def world(tmp_path: Path) -> Iterator[tuple[Stores, Signoff, Clock]]:
    stores = Stores(tmp_path / "store", scenario())
    clock = Clock(t(2026, 11, 5))
    svc = Signoff(
        stores.con("province"),
        H,
        StorePublisher(stores.root, clock),
        registry=REG,
        access_log=AccessLog(tmp_path / "access.log"),
    )
    yield stores, svc, clock
    stores.close()


def approve(svc: Signoff, station: str, unit: str) -> Any:
    sup = dev_approver(unit)
    return svc.approve(f"district:{unit}", station, "2026-10", approver=sup, key=key(sup))


def test_month_states_and_who_may_act(world: tuple[Stores, Signoff, Clock]) -> None:
    _stores, svc, clock = world
    st = svc.status("district:KV001", "KV001", "2026-10")
    assert {s.station: s.state for s in st.stations} == {
        A: "submitted",
        A2: "submitted",
        A3: "missing",
    }
    assert [s.on_time for s in st.stations] == [True, False, False]
    approve(svc, A, "KV001")
    with pytest.raises(SignoffRefused, match="already approved"):
        approve(svc, A, "KV001")
    with pytest.raises(SignoffRefused, match="has not submitted"):
        approve(svc, A3, "KV001")
    with pytest.raises(AccessDenied):
        approve(svc, B, "KV001")  # KV002's station
    sup = dev_approver("KV001")
    clock.now = t(2026, 11, 21)  # A2 submitted on the 20th
    svc.send_back("district:KV001", A2, "2026-10", reason="sổ A1 thiếu", approver=sup,
                  key=key(sup))  # fmt: skip
    st = svc.status("province:01", "KV001", "2026-10")
    assert {s.station: s.state for s in st.stations}[A2] == "sent_back"
    assert {s.station: s.state for s in st.stations}[A] == "approved"
    # the province locks: refused while B waits, forced it locks as it is
    p01 = dev_approver("01")
    with pytest.raises(AccessDenied):
        svc.lock("district:KV001", "01", "2026-10", approver=p01, key=key(p01))
    with pytest.raises(SignoffRefused, match="wait for approval"):
        svc.lock("province:01", "01", "2026-10", approver=p01, key=key(p01))
    approve(svc, B, "KV002")
    clock.now = t(2026, 11, 22)
    svc.lock("province:01", "01", "2026-10", approver=p01, key=key(p01))
    with pytest.raises(SignoffRefused, match="locked"):
        approve(svc, A2, "KV001")
    assert svc.status("province:01", "01", "2026-10").locks
    outcomes = [e["outcome"] for e in svc.log.read()] if svc.log else []
    assert "refused" in outcomes and "allowed" in outcomes


def test_a_locked_month_does_not_change_and_a_late_record_shows_as_a_revision(
    world: tuple[Stores, Signoff, Clock],
) -> None:
    stores, svc, clock = world
    approve(svc, A, "KV001")
    approve(svc, A2, "KV001")
    approve(svc, B, "KV002")
    clock.now = t(2026, 11, 6)
    p01 = dev_approver("01")
    svc.lock("province:01", "01", "2026-10", approver=p01, key=key(p01))
    before = stores.report(H, "health", "province", "01", "2026-10", basis="submitted")
    code = "outpatient_visits_per_capita"
    assert before.numerator(code) == 4
    # a paper register back-entered in December: a visit of 20 October at A
    late = {"health_id": "2000000002", "encounter_date": "2026-10-20", "diagnoses": ["J06"]}
    stores.add([change(H, "encounter", "2000000002:late", late, A, t(2026, 12, 3),
                       received_time=t(2026, 12, 3))])  # fmt: skip
    after = stores.report(H, "health", "province", "01", "2026-10", basis="submitted")
    assert after.cells == before.cells  # the locked month, as submitted, did not move
    latest = stores.report(H, "health", "province", "01", "2026-10")
    cell = latest.cell(code)
    assert cell.numerator == 5 and cell.submitted == (4, cell.denominator) and cell.revised
    assert latest.cell(code, "KV001").revised and not latest.cell(code, "KV002").revised
    assert latest.approved_station_months == 3
    national = stores.report(H, "health", "national", None, "2026-10")
    assert national.reporting == ("01",)  # only Hà Nội's stations submitted


def test_completeness_counts_approvals_and_locks(world: tuple[Stores, Signoff, Clock]) -> None:
    stores, svc, clock = world
    b2 = "00073"  # KV002's other station
    stores.add([change(H, "report_submission", f"{b2}:submission:2026-10",
                       {"period": "2026-10"}, b2, t(2026, 11, 4))])  # fmt: skip
    approve(svc, A, "KV001")
    approve(svc, A2, "KV001")
    approve(svc, B, "KV002")
    approve(svc, b2, "KV002")
    p01 = dev_approver("01")
    svc.lock("province:01", "01", "2026-10", approver=p01, key=key(p01))
    p = stores.report(H, "completeness", "province", "01", "2026-10")
    assert p.numerator("reports_approved") == 4
    # KV001 has A3, which never reported: not on time; both of KV002's stations were
    # approved on 5 November, within 15 working days
    districts = p.denominator("ontime_district")
    assert p.numerator("ontime_district", "KV002") == 1
    assert p.numerator("ontime_district", "KV001") == 0
    assert districts == len(H.children("01", t(2026, 10, 31)))
    n = stores.report(H, "completeness", "national", None, "2026-10")
    assert n.numerator("ontime_province", "01") == 1  # locked 5 November
    assert n.numerator("ontime_province") == 1 and n.denominator("ontime_province") == 34
    clock.now += timedelta(days=1)


def test_a_send_back_withdraws_the_approval_until_approved_again(
    world: tuple[Stores, Signoff, Clock],
) -> None:
    stores, svc, clock = world
    approve(svc, A, "KV001")
    sup = dev_approver("KV001")
    clock.now = t(2026, 11, 6)
    svc.send_back("district:KV001", A, "2026-10", reason="sai số", approver=sup, key=key(sup))
    r = stores.report(H, "completeness", "district", "KV001", "2026-10")
    assert r.numerator("reports_approved") == 0
    clock.now = t(2026, 11, 7)
    approve(svc, A, "KV001")
    r = stores.report(H, "completeness", "district", "KV001", "2026-10")
    assert r.numerator("reports_approved") == 1


def test_the_signoff_sink_stores_verified_decisions_and_dead_letters_the_rest() -> None:
    from sinks.signoff.encode import LOG_APPEND_TIME, signoff_encoder
    from sinks.testing import FakeMessage

    sup = dev_approver("KV001")
    good = make_decision(
        "approve", period="2026-10", province="01", station=A, unit="KV001", approver=sup
    ).signed(key(sup))
    bad = good.model_copy(update={"station": A2})  # the signature no longer matches

    def msg(offset: int, value: bytes) -> FakeMessage:
        return FakeMessage("signoff.decisions", 0, offset, value, _timestamp_type=LOG_APPEND_TIME)

    out = signoff_encoder(None, development=True)(
        [msg(0, good.to_json()), msg(1, bad.to_json()), msg(2, b"not json")]
    )
    assert set(out) == {
        "signoff/province=01/month=2026-10",
        "dlq/reason=tampered/day=2026-02-25",
        "dlq/reason=not_json/day=2026-02-25",
    }
    (row,) = out["signoff/province=01/month=2026-10"].to_pylist()
    assert (row["station"], row["approver"], row["kafka_offset"]) == (A, sup, 0)


def test_a_decision_the_registry_refuses_is_never_sent(
    world: tuple[Stores, Signoff, Clock], tmp_path: Path
) -> None:
    """Checked against the approvers' registry before it is published: a key the registry
    does not hold is refused with the reason, and nothing reaches the ledger."""
    from nacl.signing import SigningKey

    stores, svc, _clock = world
    sup = dev_approver("KV001")
    with pytest.raises(AccessDenied, match=r"TUYEN_APPROVER_KEYS.* does not verify"):
        svc.approve("district:KV001", A, "2026-10", approver=sup, key=SigningKey.generate())
    with pytest.raises(AccessDenied, match="not registered"):
        svc.approve("district:KV001", A, "2026-10", approver="someone", key=key(sup))
    assert svc.status("district:KV001", "KV001", "2026-10").count("approved") == 0
    reader = Signoff(stores.con("province"), H, StorePublisher(stores.root, _clock))
    with pytest.raises(BadRequest, match="registry"):  # no registry: decides nothing
        reader.approve("district:KV001", A, "2026-10", approver=sup, key=key(sup))


def test_as_submitted_views_belong_to_one_connection(world: tuple[Stores, Signoff, Clock]) -> None:
    """A report "as submitted" hides the catalog's views on its own cursor only: a report on
    another cursor at the same time (the portal's threads) reads the latest records."""
    from sinks.signoff.ledger import asof_views, drop_asof_views, read_ledger

    stores, svc, _clock = world
    approve(svc, A, "KV001")
    con = stores.con("province")
    mine, other = con.cursor(), con.cursor()
    count = "SELECT count(*) FROM encounter"
    latest = other.execute(count).fetchall()[0][0]
    asof_views(mine, read_ledger(mine, ["2026-10"]), "2026-10", "2026-10")
    assert mine.execute(count).fetchall()[0][0] == 2  # A's two visits, as approved
    assert other.execute(count).fetchall()[0][0] == latest == 4
    drop_asof_views(mine)
    assert mine.execute(count).fetchall()[0][0] == latest


def test_decisions_are_signed_over_rfc_8785_with_the_approvers_key_ids(tmp_path: Path) -> None:
    """The signed bytes are RFC 8785 (the ``rfc8785`` reference implementation agrees); an
    approver rotating keys names the key in ``key_id``; a revoked key stops signing at the
    broker's receive time, whatever the decision's own time says."""
    import orjson
    import rfc8785

    from schemas.signoff import StaticApproverRegistry

    old, new = SigningKey.generate(), SigningKey.generate()
    revoked = REVOKED
    doc = rotated_approver(old, new)
    registry = StaticApproverRegistry.from_json(orjson.dumps(doc))
    decision = make_decision(
        "approve", period="2026-10", province="01", station=A, unit="KV001", approver="binh",
        time=datetime(2026, 11, 5, tzinfo=UTC),
    )  # fmt: skip
    signed_old = decision.signed(old, "2025")
    fields = signed_old.model_dump(mode="json", exclude={"signature"})
    assert signed_old.canonical() == rfc8785.dumps(fields)  # key_id set: signed with it
    assert "key_id" not in orjson.loads(decision.signed(new).canonical())  # unset: left out
    before, after = revoked - timedelta(days=1), revoked + timedelta(seconds=1)
    check_decision(signed_old, registry, H, received=before)
    with pytest.raises(ContractViolation) as exc:
        check_decision(signed_old, registry, H, received=after)
    assert exc.value.reason is Reason.SIGNER_KEY_REVOKED
    check_decision(decision.signed(new, "2026"), registry, H, received=after)
    check_decision(decision.signed(new), registry, H, received=after)  # no key_id: tried
    with pytest.raises(ContractViolation) as exc:
        check_decision(decision.signed(new, "2025"), registry, H, received=before)
    assert exc.value.reason is Reason.TAMPERED
    with pytest.raises(ContractViolation) as exc:
        check_decision(decision.signed(new, "1999"), registry, H, received=before)
    assert exc.value.reason is Reason.UNKNOWN_KEY_ID
    bad = {
        **doc,
        "approvers": [
            approver_entry(old, "2025"),
            {**approver_entry(new, "2026"), "unit": "KV002"},
        ],
    }
    with pytest.raises(ContractViolation, match="differ in unit or roles"):
        StaticApproverRegistry.from_json(orjson.dumps(bad))
    with pytest.raises(ContractViolation, match="each needs a key_id"):
        StaticApproverRegistry.from_json(
            orjson.dumps(
                {
                    "approvers": [
                        approver_entry(old, "2025"),
                        {**approver_entry(new, "x"), "key_id": None},
                    ]
                }
            )
        )


def test_the_signoff_sink_judges_a_rotated_approver_key_by_the_broker_time(
    tmp_path: Path,
) -> None:
    """The sink outside development mode, with a registry file where approver binh rotated
    from key 2025 to key 2026 and the old one was revoked: a decision signed with the old
    key is stored when the broker received it before the revocation and dead-lettered
    (``signer_key_revoked``) when received after it, whatever its own time says; the new key
    is stored; a development approver is not registered there."""
    import orjson
    from nacl.signing import SigningKey

    from sinks.signoff.encode import LOG_APPEND_TIME, signoff_encoder
    from sinks.testing import FakeMessage

    old, new = SigningKey.generate(), SigningKey.generate()
    revoked = REVOKED

    path = tmp_path / "approvers.json"
    path.write_bytes(orjson.dumps(rotated_approver(old, new)))

    def decision(station: str, signing: SigningKey, key_id: str, approver: str = "binh") -> bytes:
        d = make_decision(
            "approve", period="2026-10", province="01", station=station, unit="KV001",
            approver=approver, time=datetime(2026, 11, 5, tzinfo=UTC),
        )  # fmt: skip
        return d.signed(signing, key_id).to_json()

    def at(t: datetime) -> int:
        return int(t.timestamp() * 1000)

    sup = dev_approver("KV001")
    before, after = at(revoked - timedelta(hours=1)), at(revoked + timedelta(seconds=1))

    def msg(offset: int, value: bytes, ms: int, kind: int = LOG_APPEND_TIME) -> FakeMessage:
        return FakeMessage(
            "signoff.decisions", 0, offset, value, _timestamp_ms=ms, _timestamp_type=kind
        )

    out = signoff_encoder(str(path), development=False)(
        [
            msg(0, decision(A, old, "2025"), before),
            msg(1, decision(A2, old, "2025"), after),
            msg(2, decision(A3, new, "2026"), after),
            msg(3, decision(A3, key(sup), "x", sup), after),
            # the revoked key with a time its sender chose (a CreateTime topic): never judged
            msg(4, decision(A2, old, "2025"), before, kind=1),
        ]
    )
    stored = out.pop("signoff/province=01/month=2026-10").to_pylist()
    assert [(r["station"], r["key_id"], r["kafka_offset"]) for r in stored] == [
        (A, "2025", 0),
        (A3, "2026", 2),
    ]
    dead = {d.split("/")[1]: t.to_pylist() for d, t in out.items()}
    assert sorted(dead) == [
        "reason=bad_time",
        "reason=signer_key_revoked",
        "reason=signer_not_registered",
    ], dead
    assert [r["offset"] for r in dead["reason=signer_key_revoked"]] == [1]
    assert [r["offset"] for r in dead["reason=bad_time"]] == [4]
