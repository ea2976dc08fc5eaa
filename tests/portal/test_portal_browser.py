"""The portal in Debian's chromium (Playwright): logins, lockout, drill-down, refusals,
downloads equal to ``tuyen report``, CSRF, the public page, the access log, accessibility.

One running portal (``tuyen portal serve`` as a subprocess) serves the whole module.
"""

from __future__ import annotations

import io
import json
import re
import shutil
import subprocess
import time
from collections.abc import Iterator
from datetime import datetime
from functools import partial
from pathlib import Path
from typing import Any

import pyarrow.csv as pacsv
import pyarrow.parquet as pq
import pytest
from playwright.sync_api import Browser, BrowserContext, Page

from schemas.hierarchy import Hierarchy
from sinks.catalog import open_catalog
from sinks.portal.accounts import LoginPolicy
from sinks.reports import ReportRequest, run_report
from sinks.reports.render.fhir import validate
from sinks.roots import StoreRoots
from sinks.signoff.ledger import read_ledger
from tests.helpers import wait_until
from tests.portal.conftest import ACCOUNTS, AUDIT_KEY, OTHER_PROVINCE, PROVINCE, Server, StoreData
from tests.portal.conftest import tuyen_command as tuyen
from tests.portal.store import enter_late

pytestmark = pytest.mark.slow


@pytest.fixture
def context(browser: Browser) -> Iterator[BrowserContext]:
    ctx = browser.new_context()
    yield ctx
    ctx.close()


def login(ctx: BrowserContext, server: Server, name: str) -> Page:
    page = ctx.new_page()
    page.goto(f"{server.url}/login")
    page.fill("#username", name)
    page.fill("#password", ACCOUNTS[name][0])
    page.click("form.login button[type=submit]")
    page.wait_for_load_state()
    return page


def latest_period(page: Page) -> str:
    return str(page.eval_on_selector("#period", "e => e.value"))


def test_log_in_and_out(portal: Server, context: BrowserContext) -> None:
    page = login(context, portal, "ana12")
    assert page.url.startswith(f"{portal.url}/u/{PROVINCE}")
    assert page.get_attribute("html", "lang") == "vi"
    assert "Bảng tổng hợp: Lai Châu" in page.inner_text("h1")
    cookie = next(c for c in context.cookies() if c["name"] == "tuyen_session")
    assert cookie["httpOnly"] and cookie["sameSite"] == "Strict"
    page.click("header form button[type=submit]")  # log out
    page.wait_for_url(f"{portal.url}/login")
    page.goto(f"{portal.url}/u/{PROVINCE}")
    assert "/login" in page.url  # the session is gone on the server too


def test_wrong_password_is_slowed_then_locked(portal: Server, context: BrowserContext) -> None:
    policy = LoginPolicy()
    page = context.new_page()
    for attempt in range(1, policy.max_failures + 1):
        page.goto(f"{portal.url}/login")
        page.fill("#username", "lockme")
        page.fill("#password", "not-the-password")
        started = time.monotonic()
        page.click("form.login button[type=submit]")
        page.wait_for_selector("p.error")
        assert time.monotonic() - started >= policy.delay(attempt) * 0.9  # slowed
        text = page.inner_text("p.error")
        locked = attempt == policy.max_failures
        assert ("tạm khóa" in text) == locked, (attempt, text)
    page.goto(f"{portal.url}/login")  # locked: even the right password is refused now
    page.fill("#username", "lockme")
    page.fill("#password", ACCOUNTS["lockme"][0])
    page.click("form.login button[type=submit]")
    page.wait_for_selector("p.error")
    assert "tạm khóa" in page.inner_text("p.error")
    outcomes = [e["outcome"] for e in portal.entries() if e.get("username") == "lockme"]
    assert outcomes[: policy.max_failures] == ["failed"] * (policy.max_failures - 1) + ["locked"]


def _expected_station(store: StoreData, district: str, station: str, period: str) -> int:
    own = StoreRoots.under(str(store.root)).province_root(PROVINCE)
    con = open_catalog(own, "district", province=PROVINCE)
    try:
        request = ReportRequest(kind="health", tier="district", unit=district, period=period,
                                principal=f"province:{PROVINCE}")  # fmt: skip
        r = run_report(con, Hierarchy.default(), request)
    finally:
        con.close()
    return r.numerator("outpatient_visits_per_capita", station) or 0


def test_province_analyst_drills_to_a_station_and_across_periods(
    portal: Server, portal_store: StoreData, context: BrowserContext
) -> None:
    page = login(context, portal, "ana12")
    period = latest_period(page)
    page.click("ul.children li >> nth=0 >> a")  # a regional health centre
    district = page.url.split("/u/")[1].split("?")[0]
    assert district.startswith("KV") and f"period={period}" in page.url
    page.click("ul.children li >> nth=0 >> a")  # one of its stations
    station = page.url.split("/u/")[1].split("?")[0]
    assert re.fullmatch(r"\d{5}", station)
    crumbs = page.inner_text("nav.crumbs")
    assert "Lai Châu" in crumbs  # the way back up, from the account's own unit
    tile = page.locator('a[data-indicator="outpatient_visits_per_capita"]').locator("..")
    shown = tile.locator(".parts").inner_text()
    want = _expected_station(portal_store, district, station, period)
    assert shown.split("/")[0].strip().replace(".", "") == str(want)
    # across periods: the quarter, then the year, for the same station
    year = period[:4]
    quarter = f"{year}-Q{(int(period[5:7]) - 1) // 3 + 1}"
    page.click(f"ul.periods a:has-text('{quarter}')")
    assert f"/u/{station}?" in page.url and f"period={quarter}" in page.url
    assert quarter in page.inner_text("h1")
    page.click(f"ul.periods a:has-text('Năm {year}')")
    assert f"period={year}" in page.url
    # and into an indicator page, with its definition, chart and figures
    page.click('a[data-indicator="outpatient_visits_per_capita"]')
    assert "/i/outpatient_visits_per_capita" in page.url
    assert page.locator("svg.line-chart").count() == 1
    assert "encounter_type = outpatient" in page.inner_text("section.definition")


def test_another_province_is_refused_and_logged(portal: Server, context: BrowserContext) -> None:
    page = login(context, portal, "ana12")
    period = latest_period(page)
    before = len(portal.entries())
    response = page.goto(f"{portal.url}/u/{OTHER_PROVINCE}?period={period}")
    assert response is not None and response.status == 403
    assert "Không được phép truy cập" in page.inner_text("h1")
    download = page.request.get(
        f"{portal.url}/download/health/{OTHER_PROVINCE}.csv?period={period}"
    )
    assert download.status == 403
    assert b"report_unit" not in download.body()
    refused = [e for e in portal.entries()[before:] if e["outcome"] == "refused"]
    assert {(e["action"], e["unit"], e["principal"], e["account"]) for e in refused} == {
        ("page:dashboard", OTHER_PROVINCE, f"province:{PROVINCE}", "ana12"),
        ("download", OTHER_PROVINCE, f"province:{PROVINCE}", "ana12"),
    }
    # a parameter cannot change who asks: there is none, and --as-like tricks do nothing
    tricked = page.request.get(f"{portal.url}/u/{OTHER_PROVINCE}?as=national&principal=national")
    assert tricked.status == 403


def test_csv_download_equals_tuyen_report(
    portal: Server, context: BrowserContext, tmp_path: Path
) -> None:
    env = {**portal.env, "TUYEN_ACCESS_LOG": str(tmp_path / "a.log")}
    page = login(context, portal, "ana12")
    period = latest_period(page)
    with page.expect_download() as info:
        page.click("section.downloads li >> nth=0 >> a >> nth=0")  # health, CSV
    got = Path(info.value.path()).read_bytes()
    cli = subprocess.run(
        [*tuyen(), "report", "health", "--tier", "province", "--unit", PROVINCE,
         "--period", period, "--as", f"province:{PROVINCE}", "--format", "csv"],
        capture_output=True, env=env, timeout=120,
    )  # fmt: skip
    assert cli.returncode == 0, cli.stderr
    assert got == cli.stdout
    assert pacsv.read_csv(io.BytesIO(got)).num_rows > 10
    # Parquet: the same table
    parquet = page.request.get(f"{portal.url}/download/health/{PROVINCE}.parquet?period={period}")
    out = tmp_path / "r.parquet"
    subprocess.run(
        [*tuyen(), "report", "health", "--tier", "province", "--unit", PROVINCE,
         "--period", period, "--as", f"province:{PROVINCE}", "--format", "parquet",
         "--out", str(out)],
        check=True, capture_output=True, env=env, timeout=120,
    )  # fmt: skip
    assert pq.read_table(io.BytesIO(parquet.body())).equals(pq.read_table(out))


def _without_generation_time(bundle: dict[str, Any]) -> dict[str, Any]:
    """The bundle minus the two fields that say when it was generated (Bundle.timestamp and
    each MeasureReport.date: FHIR defines them as the generation time, so two runs differ)."""
    entries = [
        {**e, "resource": {k: v for k, v in e["resource"].items() if k != "date"}}
        for e in bundle["entry"]
    ]
    return {**{k: v for k, v in bundle.items() if k != "timestamp"}, "entry": entries}


def test_fhir_download_equals_tuyen_report(
    portal: Server, context: BrowserContext, tmp_path: Path
) -> None:
    env = {**portal.env, "TUYEN_ACCESS_LOG": str(tmp_path / "a.log")}
    page = login(context, portal, "ana12")
    period = latest_period(page)
    for kind in ("health", "resources"):
        got = page.request.get(f"{portal.url}/download/{kind}/{PROVINCE}.fhir.json?period={period}")
        assert got.status == 200 and got.headers["content-type"].startswith("application/fhir+json")
        cli = subprocess.run(
            [*tuyen(), "report", kind, "--tier", "province", "--unit", PROVINCE,
             "--period", period, "--as", f"province:{PROVINCE}", "--format", "fhir"],
            capture_output=True, env=env, timeout=120,
        )  # fmt: skip
        assert cli.returncode == 0, cli.stderr
        portal_doc, cli_doc = json.loads(got.body()), json.loads(cli.stdout)
        assert len(portal_doc["entry"]) > 10
        # ids and fullUrls are derived from kind, unit, period and indicator: equal as is
        assert [e["fullUrl"] for e in portal_doc["entry"]] == [
            e["fullUrl"] for e in cli_doc["entry"]
        ]
        assert _without_generation_time(portal_doc) == _without_generation_time(cli_doc)
        for doc in (portal_doc, cli_doc):  # the generation times are well-formed instants
            stamps = [doc["timestamp"], *(e["resource"]["date"] for e in doc["entry"])]
            assert all(datetime.fromisoformat(s).tzinfo is not None for s in stamps)
            assert len({e["resource"]["date"] for e in doc["entry"]}) == 1
        validate(portal_doc)


def _waiting(page: Page, server: Server) -> list[str]:
    """The approval forms' actions (``/approvals/<station>/<month>``) waiting on the page."""
    page.goto(f"{server.url}/approvals")
    return [
        str(a)
        for a in page.locator("form.decide").evaluate_all(
            "fs => fs.map(f => f.getAttribute('action'))"
        )
    ]


def test_requests_without_the_csrf_token_are_refused(
    portal: Server, context: BrowserContext
) -> None:
    page = login(context, portal, "ana12")
    logout = page.request.post(f"{portal.url}/logout", form={"csrf": "forged"})
    assert logout.status == 403
    action = _waiting(page, portal)[0]
    decide = page.request.post(f"{portal.url}{action}", form={"decision": "approve"})
    assert decide.status == 403
    assert action in _waiting(page, portal)  # still waiting
    page.goto(f"{portal.url}/u/{PROVINCE}")
    assert "/login" not in page.url  # still logged in: the forged logout did nothing


def test_an_approver_approves_and_sends_back(portal: Server, context: BrowserContext) -> None:
    page = login(context, portal, "ana12")
    first, second = _waiting(page, portal)[:2]
    page.click(f'form[action="{first}"] button[value="approve"]')
    assert "Đã phê duyệt" in page.inner_text("p.notice")
    form = page.locator(f'form[action="{second}"]')
    form.locator("input[name=note]").fill("thiếu số liệu tiêm chủng")
    form.locator('button[value="send_back"]').click()
    assert "Đã trả lại" in page.inner_text("p.notice")
    assert first not in _waiting(page, portal) and second not in _waiting(page, portal)
    decided = {
        f"/approvals/{e['station']}/{e['period']}": e["decision"]
        for e in portal.entries()
        if e["action"] == "approval" and e["outcome"] == "allowed"
    }
    assert {k: v for k, v in decided.items() if k in (first, second)} == {
        first: "approved",
        second: "sent_back",
    }
    # the signoff sink verified and stored both (signed with ana12's key, held by the portal)
    for action, state in ((first, "approved"), (second, "sent_back")):
        station, month = action.split("/")[2:]
        wait_until(partial(_stored_as, portal, station, month, state), timeout=60,
                   message=f"{action} not {state} in the store")  # fmt: skip


def _stored_as(server: Server, station: str, month: str, state: str) -> bool:
    return _state_in_store(server, station, month) == state


def _state_in_store(server: Server, station: str, month: str) -> str | None:
    own = StoreRoots.under(str(server.store)).province_root(PROVINCE)
    con = open_catalog(own, "province", province=PROVINCE)
    try:
        sm = read_ledger(con, [month]).stations.get((station, month))
    finally:
        con.close()
    if sm is None:
        return None
    return "approved" if sm.approved_at else ("sent_back" if sm.sent_back_at else None)


def test_approved_month_as_submitted_keeps_the_figures_of_the_approval(
    portal: Server, portal_store: StoreData, context: BrowserContext
) -> None:
    """An approver approves a submitted month in the browser; the report "as submitted" then
    shows the figures as they were at the approval, while a visit of that month entered
    afterwards (a register back-entered late) moves "latest" only."""
    page = login(context, portal, "ana12")

    def visits(station: str, month: str, view: str) -> int:
        got = page.request.get(
            f"{portal.url}/download/health/{station}.csv?period={month}&view={view}"
        )
        assert got.status == 200, got.text()
        rows = pacsv.read_csv(io.BytesIO(got.body())).to_pylist()
        (n,) = [r["numerator"] for r in rows if r["indicator"] == "outpatient_visits_per_capita"]
        return int(n)

    waiting = [a.split("/")[2:] for a in _waiting(page, portal)]
    station, month = max(waiting, key=lambda sm: visits(sm[0], sm[1], "latest"))
    latest = visits(station, month, "latest")
    assert latest > 0
    assert visits(station, month, "as-submitted") == 0  # nothing approved: nothing submitted
    page.click(f'form[action="/approvals/{station}/{month}"] button[value="approve"]')
    assert "Đã phê duyệt" in page.inner_text("p.notice")
    wait_until(partial(_stored_as, portal, station, month, "approved"), timeout=60,
               message="the approval did not reach the store")  # fmt: skip
    wait_until(lambda: visits(station, month, "as-submitted") == latest, timeout=30,
               message="as submitted never showed the approved figures")  # fmt: skip
    visit = next(
        rec.data for (rt, _), rec in portal_store.sim.truth.live_records().items()
        if rt == "encounter" and rec.station == station and rec.data
        and rec.data.get("encounter_type") == "outpatient"
        and str(rec.data.get("encounter_date", "")).startswith(month)
    )  # fmt: skip
    enter_late(portal_store.root, station, "encounter", visit, batch=1)
    wait_until(lambda: visits(station, month, "latest") == latest + 1, timeout=30,
               message="the late visit did not reach the latest figures")  # fmt: skip
    assert visits(station, month, "as-submitted") == latest  # frozen at the approval
    page.goto(f"{portal.url}/u/{station}?period={month}&view=as-submitted")
    assert page.eval_on_selector("#view", "e => e.value") == "as-submitted"
    tile = page.locator('a[data-indicator="outpatient_visits_per_capita"]').locator("..")
    assert tile.locator(".parts").inner_text().split("/")[0].strip().replace(".", "") == str(latest)


def test_public_page_has_no_identifier_and_no_small_count(
    portal: Server, portal_store: StoreData, context: BrowserContext
) -> None:
    page = context.new_page()  # nobody logged in
    page.goto(f"{portal.url}/public")
    html = page.content()
    page.goto(f"{portal.url}/public?province={PROVINCE}")
    html += page.content()
    cells = page.locator("td.count").all_inner_texts()
    assert len(cells) > 50 and "*" in cells  # communes: small cells are there, hidden
    threshold = 5
    for text in cells:
        if text != "*":
            value = int(text.replace(".", ""))
            assert value == 0 or value >= threshold, text
    people = [
        rec.data for (rt, _), rec in portal_store.sim.truth.records.items()
        if rt == "person" and rec.data
    ]  # fmt: skip
    assert people
    for person in people:
        assert person["health_id"] not in html
        assert person.get("full_name", "~") not in html
        assert str(person.get("citizen_id", "~")) not in html
    assert not re.search(r"\b\d{10}\b|\b\d{12}\b", html)  # no health / citizen id shape
    data = page.request.get(f"{portal.url}/public/data/staff.csv")
    table = pacsv.read_csv(io.BytesIO(data.body())).to_pylist()
    assert any(r["suppressed"] for r in table)
    assert all(r["value"] is None or r["value"] == 0 or r["value"] >= threshold for r in table)


def test_access_log_verification_detects_an_edited_line(
    portal: Server, context: BrowserContext, tmp_path: Path
) -> None:
    login(context, portal, "ana12").goto(f"{portal.url}/u/{PROVINCE}")
    copy = tmp_path / "access.log"
    shutil.copy(portal.access_log, copy)
    shutil.copy(portal.access_log.with_name("access.log.head"), tmp_path / "access.log.head")
    env = {**portal.env, "TUYEN_ACCESS_LOG_KEY": AUDIT_KEY}
    ok = subprocess.run([*tuyen(), "portal", "audit", "verify", "--log", str(copy)],
                        capture_output=True, text=True, env=env, timeout=60)  # fmt: skip
    assert ok.returncode == 0 and "ok:" in ok.stdout, ok.stdout + ok.stderr
    lines = copy.read_text(encoding="utf-8").splitlines(keepends=True)
    victim = next(i for i, line in enumerate(lines) if '"outcome":"refused"' in line)
    lines[victim] = lines[victim].replace('"outcome":"refused"', '"outcome":"allowed"')
    copy.write_text("".join(lines), encoding="utf-8")
    bad = subprocess.run([*tuyen(), "portal", "audit", "verify", "--log", str(copy)],
                         capture_output=True, text=True, env=env, timeout=60)  # fmt: skip
    assert bad.returncode == 1
    assert f"line {victim + 1}" in bad.stdout and "edited" in bad.stdout
    # administrators read the log (and its check) in the portal
    admin = login(context, portal, "admin")
    admin.goto(f"{portal.url}/admin/audit")
    assert admin.locator("p.ok").count() == 1
    assert "ana12" in admin.inner_text("table.audit")


def test_api_token_gives_the_same_scope_and_can_be_revoked(
    portal: Server, context: BrowserContext
) -> None:
    admin = login(context, portal, "admin")
    admin.goto(f"{portal.url}/admin/users")
    row = admin.locator("tr", has=admin.locator("th", has_text="ana12"))
    row.locator('form[action$="/token"] button').click()
    token = admin.inner_text("p.secret code")
    assert token.startswith("tyn_")
    api = context.request
    auth = {"authorization": f"Bearer {token}"}
    own = api.get(f"{portal.url}/download/health/{PROVINCE}.csv", headers=auth)
    assert own.status == 200 and b"report_unit" in own.body()
    other = api.get(f"{portal.url}/download/health/{OTHER_PROVINCE}.csv", headers=auth)
    assert other.status == 403
    tid = token.split("_")[1]
    admin.goto(f"{portal.url}/admin/users")
    admin.click(f'form[action="/admin/tokens/{tid}/revoke"] button')
    assert api.get(f"{portal.url}/download/health/{PROVINCE}.csv", headers=auth).status == 401
    stored = (portal.state / "portal.sqlite").read_bytes()
    assert token.split("_", 2)[2].encode() not in stored  # only its hash is kept


PAGES = [
    "/login",
    f"/u/{PROVINCE}",
    f"/u/{PROVINCE}/i/outpatient_visits_per_capita",
    f"/u/{PROVINCE}/completeness",
    "/approvals",
    "/public",
    f"/public?province={PROVINCE}",
]


@pytest.mark.parametrize("lang", ["vi", "en"])
def test_pages_pass_axe_and_load_nothing_from_another_origin(
    portal: Server, browser: Browser, axe_js: Path, lang: str
) -> None:
    ctx = browser.new_context(bypass_csp=True)  # to inject axe; the pages themselves run none
    try:
        requests: list[str] = []
        page = login(ctx, portal, "ana12")
        page.on("request", lambda r: requests.append(r.url))
        page.goto(f"{portal.url}/lang/{lang}?next=/u/{PROVINCE}")
        assert page.get_attribute("html", "lang") == lang
        for path in PAGES:
            page.goto(portal.url + path)
            html = page.content()
            for ref in re.findall(r'(?:src|href|action)="([^"]*)"', html):
                assert not re.match(r"^(?:[a-z]+:)?//", ref) or ref.startswith(portal.url), ref
            page.add_script_tag(path=str(axe_js))
            violations = page.evaluate(
                "async () => (await axe.run(document)).violations.map("
                "v => v.id + ': ' + v.nodes.map(n => n.target.join(' ')).join(', '))"
            )
            assert violations == [], f"{path} ({lang}): {violations}"
        assert requests and all(u.startswith(portal.url) for u in requests), requests
        page.goto(f"{portal.url}/u/{PROVINCE}")
        page.keyboard.press("Tab")  # keyboard users land on "skip to content" first
        assert page.evaluate("document.activeElement.className") == "skip"
        page.keyboard.press("Enter")
        assert page.evaluate("document.activeElement.id") == "main"
    finally:
        ctx.close()
