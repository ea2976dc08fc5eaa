"""DuckDB SQL that turns the catalog into additive per-station *facts* for one period.

``_tuyen_facts(station_code, district_code, province_code, month, indicator, num, den)``:
one row per recorded placement, contribution month and indicator; ``num``/``den`` are
counts that add up over stations and months (``den`` is NULL when the denominator comes
from the hierarchy). ``_tuyen_arrivals(station_code, district_code, province_code, month,
last_received)``: per station-month, the latest arrival of that month's data.

The catalog interface: a view per record type with its current state (``<rt>``) and all
its changes (``<rt>_changes``), the envelope columns (``station_code``, ``district_code``,
``province_code`` as recorded, ``event_month``, ``received_time`` …), ``data`` (JSON) and the
payload's top-level fields as columns (nested values as JSON strings).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence

import duckdb

from schemas import codes
from sinks.reports.periods import Period

__all__ = ["ARRIVALS", "FACTS", "ScopeFilter", "collect_arrivals", "collect_facts"]

logger = logging.getLogger(__name__)

FACTS = "_tuyen_facts"
ARRIVALS = "_tuyen_arrivals"

SNAPSHOT_TYPES = ("staff_snapshot", "bed_snapshot", "equipment_snapshot", "stock_snapshot")
FLOW_TYPES = (
    "person",
    "encounter",
    "immunization",
    "chronic_followup",
    "antenatal_visit",
    "birth",
    "death",
    "disease_case",
)

_PLACE = "station_code, district_code, province_code"


class ScopeFilter:
    """A pushed-down superset filter on recorded codes (``None``: every row)."""

    def __init__(self, column: str | None = None, values: Sequence[str] = ()) -> None:
        self.column = column
        self.values = tuple(sorted(set(values)))

    def sql(self, alias: str = "") -> str:
        if self.column is None:
            return ""
        col = f"{alias}.{self.column}" if alias else self.column
        quoted = ", ".join("'" + v.replace("'", "''") + "'" for v in self.values) or "NULL"
        return f" AND {col} IN ({quoted})"


def _relations(con: duckdb.DuckDBPyConnection) -> set[str]:
    rows = con.execute("SELECT table_name FROM information_schema.tables").fetchall()
    return {str(r[0]) for r in rows}


def _columns(con: duckdb.DuckDBPyConnection, relation: str) -> set[str]:
    rows = con.execute(
        "SELECT column_name FROM information_schema.columns WHERE table_name = ?", [relation]
    ).fetchall()
    return {str(r[0]) for r in rows}


def _birth_month(cols: set[str], alias: str = "") -> str:
    """Birth month ``YYYY-MM`` of a person row: the birth date where the tier keeps it, else
    the pseudonymised ``birth_month``."""
    a = f"{alias}." if alias else ""
    parts = []
    if "birth_date" in cols:
        parts.append(f"strftime(CAST({a}birth_date AS DATE), '%Y-%m')")
    if "birth_month" in cols:
        parts.append(f"CAST({a}birth_month AS VARCHAR)")
    parts.append(f"substr(json_extract_string({a}data, '$.birth_date'), 1, 7)")
    parts.append(f"json_extract_string({a}data, '$.birth_month')")
    return f"coalesce({', '.join(parts)})"


def _snapshot_latest(rt: str, scope: ScopeFilter) -> str:
    return f"""
        SELECT *, row_number() OVER (
            PARTITION BY station_code
            ORDER BY period DESC, CAST(as_of AS DATE) DESC, event_time DESC, record_id DESC
        ) AS _rn
        FROM {rt} WHERE period BETWEEN $first AND $last{scope.sql()}"""


def _health_sql(person_cols: set[str], scope: ScopeFilter) -> dict[str, str]:
    s = scope.sql()
    bm = _birth_month(person_cols)
    req = ", ".join(f"('{v}', {d})" for v, d in codes.FULLY_IMMUNISED_UNDER_1.items())
    n_req = len(codes.FULLY_IMMUNISED_UNDER_1)
    in_period = "event_month BETWEEN $first AND $last"
    return {
        "person": f"""
            SELECT {_PLACE}, event_month, 'health_record_coverage', count(*), NULL
            FROM person WHERE event_month <= $last{s} GROUP BY ALL""",
        "encounter": f"""
            SELECT {_PLACE}, event_month, 'outpatient_visits_per_capita', count(*), NULL
            FROM encounter
            WHERE {in_period} AND coalesce(encounter_type, 'outpatient') = 'outpatient'{s}
            GROUP BY ALL""",
        "immunization+person": f"""
            WITH c AS (
                SELECT health_id, {_PLACE}, event_month,
                       CAST({bm} || '-01' AS DATE) AS b0
                FROM person WHERE {bm} IS NOT NULL{s}
            ), c2 AS (
                SELECT *, strftime(b0 + INTERVAL 11 MONTH, '%Y-%m') AS by_month FROM c
                WHERE strftime(b0 + INTERVAL 12 MONTH, '%Y-%m') BETWEEN $first AND $last
            ), req(vaccine, dose) AS (VALUES {req}),
            g AS (
                SELECT c2.health_id, count(DISTINCT req.vaccine) AS n
                FROM c2 JOIN immunization i ON i.health_id = c2.health_id
                JOIN req ON req.vaccine = i.vaccine AND i.dose_number >= req.dose
                WHERE strftime(CAST(i."date" AS DATE), '%Y-%m') <= c2.by_month
                GROUP BY c2.health_id
            )
            SELECT c2.station_code, c2.district_code, c2.province_code, c2.event_month,
                   'fully_immunised_under_1',
                   count(*) FILTER (WHERE coalesce(g.n, 0) >= {n_req}), count(*)
            FROM c2 LEFT JOIN g ON g.health_id = c2.health_id GROUP BY ALL""",
        "measles": f"""
            WITH p AS (
                SELECT health_id, CAST({bm} || '-01' AS DATE) AS b0 FROM person
                WHERE {bm} IS NOT NULL
            ), d AS (
                SELECT {_PLACE}, event_month, health_id, CAST("date" AS DATE) AS dd
                FROM immunization
                WHERE {in_period} AND dose_number = 1 AND vaccine IN ('MEASLES', 'MR'){s}
            )
            SELECT d.station_code, d.district_code, d.province_code, d.event_month,
                   'measles_coverage', count(DISTINCT d.health_id), 0
            FROM d JOIN p ON p.health_id = d.health_id
            WHERE strftime(d.dd, '%Y-%m') <= strftime(p.b0 + INTERVAL 11 MONTH, '%Y-%m')
            GROUP BY ALL""",
        "birth": f"""
            WITH b AS (
                SELECT {_PLACE}, event_month, count(*) AS n,
                       count(*) FILTER (WHERE place = 'facility') AS fac,
                       count(*) FILTER (WHERE live_birth) AS live
                FROM birth WHERE {in_period}{s} GROUP BY ALL
            )
            SELECT {_PLACE}, event_month,
                   unnest(['facility_births', 'infant_mortality', 'measles_coverage']),
                   unnest([fac, 0, 0]), unnest([n, live, live])
            FROM b""",
        "death": f"""
            SELECT {_PLACE}, event_month, 'infant_mortality', count(*), 0
            FROM death WHERE {in_period} AND (age_days IS NOT NULL OR age_years = 0){s}
            GROUP BY ALL""",
        "chronic_followup": f"""
            WITH f AS (
                SELECT {_PLACE}, event_month, condition, controlled, row_number() OVER (
                    PARTITION BY station_code, condition, health_id
                    ORDER BY CAST(visit_date AS DATE) DESC, event_time DESC, record_id DESC
                ) AS rn
                FROM chronic_followup WHERE {in_period}{s}
            )
            SELECT {_PLACE}, event_month, condition || '_managed', count(*), NULL
            FROM f WHERE rn = 1 GROUP BY ALL
            UNION ALL
            SELECT {_PLACE}, event_month, condition || '_controlled',
                   count(*) FILTER (WHERE controlled), count(*)
            FROM f WHERE rn = 1 GROUP BY ALL""",
        "birth+antenatal_visit": f"""
            WITH b AS (
                SELECT DISTINCT {_PLACE}, event_month, mother_health_id AS mid,
                       coalesce(strftime(CAST(birth_date AS DATE), '%Y-%m'),
                                json_extract_string(data, '$.birth_month')) AS bm
                FROM birth WHERE {in_period}{s}
            ), v AS (
                SELECT b.mid, b.bm, count(*) AS n
                FROM (SELECT DISTINCT mid, bm FROM b) b
                JOIN antenatal_visit a ON a.health_id = b.mid
                 AND strftime(CAST(a.visit_date AS DATE), '%Y-%m')
                     BETWEEN strftime(CAST(b.bm || '-01' AS DATE) - INTERVAL 9 MONTH, '%Y-%m')
                         AND b.bm
                GROUP BY ALL
            )
            SELECT b.station_code, b.district_code, b.province_code, b.event_month, 'anc4',
                   count(*) FILTER (WHERE coalesce(v.n, 0) >= 4), count(*)
            FROM b LEFT JOIN v ON v.mid = b.mid AND v.bm = b.bm GROUP BY ALL""",
        "disease_case": f"""
            SELECT {_PLACE}, event_month, 'incidence_' || lower(disease), count(*), NULL
            FROM disease_case WHERE {in_period}{s} GROUP BY ALL
            UNION ALL
            SELECT {_PLACE}, event_month, 'incidence_all', count(*), NULL
            FROM disease_case WHERE {in_period}{s} GROUP BY ALL""",
    }


def _resources_sql(scope: ScopeFilter) -> dict[str, str]:
    staff = _snapshot_latest("staff_snapshot", scope)
    doc = "coalesce(CAST(CAST(counts AS JSON)->>'$.doctor' AS BIGINT), 0)"
    mw = (
        "coalesce(CAST(CAST(counts AS JSON)->>'$.midwife' AS BIGINT), 0) + "
        "coalesce(CAST(CAST(counts AS JSON)->>'$.ob_paediatric_assistant_doctor' AS BIGINT), 0)"
    )
    eq_t = """json_transform(CAST(items AS JSON), '[{"quantity":"BIGINT","working":"BIGINT"}]')"""
    st_t = """json_transform(CAST(items AS JSON), '[{"stock_out":"BOOLEAN"}]')"""
    return {
        "staff_snapshot": f"""
            WITH s AS ({staff})
            SELECT {_PLACE}, period,
                   unnest(['doctors_per_10000', 'stations_with_doctor', 'stations_with_midwife']),
                   unnest([{doc}, CASE WHEN {doc} >= 1 THEN 1 ELSE 0 END,
                           CASE WHEN {mw} >= 1 THEN 1 ELSE 0 END]),
                   unnest([NULL, 1, 1])
            FROM s WHERE _rn = 1""",
        "bed_snapshot": f"""
            WITH s AS ({_snapshot_latest("bed_snapshot", scope)})
            SELECT {_PLACE}, period, 'beds_per_10000', coalesce(beds_total, 0), NULL
            FROM s WHERE _rn = 1""",
        "equipment_snapshot": f"""
            WITH s AS ({_snapshot_latest("equipment_snapshot", scope)}),
            x AS (SELECT *, {eq_t} AS it FROM s WHERE _rn = 1)
            SELECT {_PLACE}, period, 'equipment_working',
                   coalesce(list_sum(list_transform(it, lambda z: z.working)), 0),
                   coalesce(list_sum(list_transform(it, lambda z: z.quantity)), 0)
            FROM x""",
        "stock_snapshot": f"""
            WITH s AS ({_snapshot_latest("stock_snapshot", scope)}),
            x AS (SELECT *, {st_t} AS it FROM s WHERE _rn = 1)
            SELECT {_PLACE}, period, 'stations_with_stockout',
                   CASE WHEN coalesce(list_bool_or(list_transform(it, lambda z: z.stock_out)),
                                      false) THEN 1 ELSE 0 END, 1
            FROM x""",
    }


def collect_facts(
    con: duckdb.DuckDBPyConnection, kind: str, period: Period, scope: ScopeFilter
) -> int:
    """(Re)build the facts table for ``kind`` and ``period``; returns its row count.

    Record types absent from the catalog contribute nothing (logged)."""
    con.execute(
        f"CREATE OR REPLACE TEMP TABLE {FACTS} (station_code VARCHAR, district_code VARCHAR, "
        "province_code VARCHAR, month VARCHAR, indicator VARCHAR, num BIGINT, den BIGINT)"
    )
    have = _relations(con)
    if kind == "health":
        person_cols = _columns(con, "person") if "person" in have else set()
        queries = _health_sql(person_cols, scope)
    elif kind == "resources":
        queries = _resources_sql(scope)
    else:
        return 0
    params = {"first": period.first, "last": period.last}
    for needs, sql in queries.items():
        missing = [rt for rt in needs.split("+") if rt in FLOW_TYPES + SNAPSHOT_TYPES]
        missing = [rt for rt in missing if rt not in have]
        if missing:
            logger.warning("catalog lacks %s: skipping facts=%s", missing, needs)
            continue
        used = {k: v for k, v in params.items() if f"${k}" in sql}
        con.execute(f"INSERT INTO {FACTS} {sql}", used)
    rows = con.execute(f"SELECT count(*) FROM {FACTS}").fetchall()
    return int(rows[0][0])


def collect_arrivals(con: duckdb.DuckDBPyConnection, period: Period, scope: ScopeFilter) -> int:
    """(Re)build the arrivals table: per recorded station placement and month, the latest
    ``received_time`` of that month's data (changes with that event month; for snapshots
    the first arrival of each record whose ``period`` is that month)."""
    con.execute(
        f"CREATE OR REPLACE TEMP TABLE {ARRIVALS} (station_code VARCHAR, district_code VARCHAR, "
        "province_code VARCHAR, month VARCHAR, last_received TIMESTAMPTZ)"
    )
    have = _relations(con)
    parts = []
    for rt in FLOW_TYPES:
        if f"{rt}_changes" in have:
            parts.append(
                f"SELECT {_PLACE}, event_month AS month, max(received_time) AS r "
                f"FROM {rt}_changes WHERE event_month BETWEEN $first AND $last{scope.sql()} "
                "GROUP BY ALL"
            )
    for rt in SNAPSHOT_TYPES:
        if f"{rt}_changes" in have:
            parts.append(
                f"SELECT arg_min(station_code, received_time), arg_min(district_code, "
                f"received_time), arg_min(province_code, received_time), period, "
                f"min(received_time) FROM {rt}_changes WHERE period BETWEEN $first AND $last"
                f"{scope.sql()} GROUP BY record_id, period"
            )
    if not parts:
        return 0
    union = " UNION ALL ".join(parts)
    con.execute(
        f"INSERT INTO {ARRIVALS} SELECT station_code, district_code, province_code, month, "
        f"max(r) FROM ({union}) AS u(station_code, district_code, province_code, month, r) "
        "GROUP BY ALL",
        {"first": period.first, "last": period.last},
    )
    rows = con.execute(f"SELECT count(*) FROM {ARRIVALS}").fetchall()
    return int(rows[0][0])
