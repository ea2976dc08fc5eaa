"""DuckDB SQL that turns the catalog into additive per-station *facts* for one period.

``_tuyen_facts(station_code, district_code, province_code, month, indicator, num, den)``:
one row per recorded placement, month and indicator; ``num``/``den`` are counts that add up
over stations and months (``den`` is NULL when the denominator comes from the hierarchy).
``month`` is the **service month** of the record a fact counts (``service_month``, see
``schemas.service``): flows are selected by it, and it is the month whose structure a record
is restated from. ``_tuyen_arrivals(station_code, district_code, province_code, month,
first_received)``: per station-month, its live report submission and when that first reached
the broker.

The catalog interface: a view per record type with its current state (``<rt>``) and all
its changes (``<rt>_changes``), the envelope columns (``station_code``, ``district_code``,
``province_code`` as recorded, ``service_month``, ``received_time`` …), ``data`` (JSON) and
the payload's top-level fields as columns (nested values as JSON strings).
"""

from __future__ import annotations

import logging
import re
from collections.abc import Sequence

import duckdb

from schemas import codes
from sinks.reports.periods import Period, month_index

__all__ = [
    "ARRIVALS",
    "FACTS",
    "ScopeFilter",
    "collect_arrivals",
    "collect_facts",
    "current_reads",
]

logger = logging.getLogger(__name__)

FACTS = "_tuyen_facts"
ARRIVALS = "_tuyen_arrivals"

SNAPSHOT_TYPES = ("staff_snapshot", "bed_snapshot", "equipment_snapshot", "stock_snapshot")
FLOW_TYPES = (
    "person",
    "encounter",
    "immunization",
    "chronic_followup",
    "chronic_enrolment",
    "antenatal_visit",
    "birth",
    "death",
    "disease_case",
    "report_submission",
)

_PLACE = "station_code, district_code, province_code"
#: month index of a ``YYYY-MM`` string (year × 12 + month − 1), for month arithmetic in SQL
_MACROS = (
    "CREATE OR REPLACE TEMP MACRO _mi(m) AS "
    "(CAST(substr(m, 1, 4) AS INTEGER) * 12 + CAST(substr(m, 6, 2) AS INTEGER) - 1)",
)


class ScopeFilter:
    """A pushed-down superset filter on recorded codes (``None``: every row)."""

    def __init__(self, column: str | None = None, values: Sequence[str] = ()) -> None:
        self.column = column
        self.values = tuple(sorted(set(values)))

    def sql(self, alias: str = "") -> str:
        if self.column is None:
            return ""
        col = f"{alias}.{self.column}" if alias else self.column
        quoted = ", ".join(_lit(v) for v in self.values) or "NULL"
        return f" AND {col} IN ({quoted})"


def _lit(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


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
    the national tier's ``birth_month``."""
    a = f"{alias}." if alias else ""
    parts = []
    if "birth_date" in cols:
        parts.append(f"strftime(CAST({a}birth_date AS DATE), '%Y-%m')")
    if "birth_month" in cols:
        parts.append(f"CAST({a}birth_month AS VARCHAR)")
    parts.append(f"json_extract_string({a}data, '$.birth_month')")
    return f"coalesce({', '.join(parts)})"


def _snapshot_latest(rt: str, scope: ScopeFilter) -> str:
    return f"""
        SELECT *, row_number() OVER (
            PARTITION BY station_code
            ORDER BY period DESC, CAST(as_of AS DATE) DESC, event_time DESC, record_id DESC
        ) AS _rn
        FROM {rt} WHERE period BETWEEN $first AND $last{scope.sql()}"""


def _json_num(column: str, *paths: str) -> str:
    """A number inside a JSON text column, trying ``paths`` in turn (older majors' shapes)."""
    got = [f"CAST(CAST({column} AS JSON)->>'{p}' AS DOUBLE)" for p in paths]
    return got[0] if len(got) == 1 else f"coalesce({', '.join(got)})"


def _controlled(alias: str) -> str:
    """Control at a chronic follow-up visit from its measurements (``codes`` thresholds):
    hypertension below 140/90 mmHg; diabetes fasting glucose below 7.0 mmol/L or HbA1c below
    7 %; nothing measured: not controlled."""
    m = f"{alias}.measurements"
    sys_ = _json_num(m, "$.blood_pressure.systolic_mmhg", "$.systolic_bp_mmhg")
    dia = _json_num(m, "$.blood_pressure.diastolic_mmhg", "$.diastolic_bp_mmhg")
    fbg = _json_num(m, "$.fasting_glucose_mmol_l")
    a1c = _json_num(m, "$.hba1c_percent")
    bp_max, dia_max = codes.BP_CONTROLLED_BELOW
    return (
        f"CASE WHEN {alias}.condition = 'hypertension' "
        f"THEN coalesce({sys_} < {bp_max} AND {dia} < {dia_max}, false) "
        f"ELSE coalesce({fbg} < {codes.FASTING_GLUCOSE_CONTROLLED_BELOW}, false) "
        f"OR coalesce({a1c} < {codes.HBA1C_CONTROLLED_BELOW}, false) END"
    )


def _dead_by_end() -> str:
    """Health ids with a live death record dated on or before the period's last month."""
    return "SELECT DISTINCT health_id FROM death WHERE service_month <= $last"


def _health_sql(person_cols: set[str], scope: ScopeFilter) -> dict[str, str]:
    """Facts of the health report, keyed by the record types each needs (``+``-joined)."""
    s = scope.sql()
    bm = _birth_month(person_cols)
    req = ", ".join(f"({_lit(v)}, {d})" for v, d in codes.FULLY_IMMUNISED_UNDER_1.items())
    mcv = ", ".join(_lit(v) for v in codes.MEASLES_CONTAINING)
    skilled = ", ".join(_lit(v) for v in sorted(codes.SKILLED_BIRTH_ATTENDANTS))
    incident = ", ".join(_lit(v) for v in codes.INCIDENT_CLASSIFICATIONS)
    in_period = "service_month BETWEEN $first AND $last"
    # children who could complete the under-1 schedule in the period (born ≤ 11 months before)
    kids = f"""
            SELECT health_id, {_PLACE}, service_month AS month, _mi({bm}) AS bi FROM person
            WHERE {bm} IS NOT NULL AND _mi({bm}) BETWEEN $fi - 11 AND $li{s}"""
    return {
        "person+death": f"""
            SELECT p.station_code, p.district_code, p.province_code, p.service_month,
                   'health_record_coverage', count(*), NULL
            FROM person p ANTI JOIN ({_dead_by_end()}) d ON d.health_id = p.health_id
            WHERE p.service_month <= $last{scope.sql("p")} GROUP BY ALL""",
        "encounter": f"""
            SELECT {_PLACE}, service_month, 'outpatient_visits_per_capita', count(*), NULL
            FROM encounter
            WHERE {in_period} AND coalesce(encounter_type, 'outpatient') = 'outpatient'{s}
            GROUP BY ALL""",
        "person+immunization": f"""
            WITH k AS ({kids}),
            req(vaccine, dose) AS (VALUES {req}),
            met AS (
                SELECT k.health_id, req.vaccine, min(_mi(i.service_month)) AS mi
                FROM k JOIN immunization i ON i.health_id = k.health_id
                JOIN req ON req.vaccine = i.vaccine AND i.dose_number >= req.dose
                GROUP BY ALL
            ), done AS (
                SELECT health_id, max(mi) AS mi FROM met GROUP BY health_id
                HAVING count(*) = {len(codes.FULLY_IMMUNISED_UNDER_1)}
            ), mcv AS (
                SELECT i.health_id, min(_mi(i.service_month)) AS mi
                FROM immunization i SEMI JOIN k ON k.health_id = i.health_id
                WHERE i.vaccine IN ({mcv}) AND i.dose_number = 1 GROUP BY ALL
            )
            SELECT k.station_code, k.district_code, k.province_code, k.month,
                   'fully_immunised_under_1', count(*), NULL
            FROM k JOIN done d ON d.health_id = k.health_id
            WHERE d.mi BETWEEN $fi AND $li AND d.mi <= k.bi + 11 GROUP BY ALL
            UNION ALL
            SELECT k.station_code, k.district_code, k.province_code, k.month,
                   'measles_coverage', count(*), NULL
            FROM k JOIN mcv m ON m.health_id = k.health_id
            WHERE m.mi BETWEEN $fi AND $li AND m.mi <= k.bi + 11 GROUP BY ALL""",
        "chronic_enrolment": f"""
            SELECT {_PLACE}, service_month, condition || '_new_registrations', count(*), NULL
            FROM chronic_enrolment WHERE {in_period}{s} GROUP BY ALL""",
        "chronic_enrolment+chronic_followup+death": f"""
            WITH r AS (
                SELECT e.health_id, e.condition, e.station_code, e.district_code,
                       e.province_code, e.service_month AS month, _mi(e.service_month) AS ei,
                       e.treatment_start_date IS NOT NULL
                       AND strftime(CAST(e.treatment_start_date AS DATE), '%Y-%m') <= $last
                       AS treated
                FROM chronic_enrolment e ANTI JOIN ({_dead_by_end()}) d
                     ON d.health_id = e.health_id
                WHERE e.service_month <= $last{scope.sql("e")}
                  AND (e.exit_date IS NULL
                       OR strftime(CAST(e.exit_date AS DATE), '%Y-%m') > $last)
            ), v AS (
                SELECT f.health_id, f.condition, _mi(f.service_month) AS vi,
                       {_controlled("f")} AS ok, row_number() OVER (
                           PARTITION BY f.health_id, f.condition
                           ORDER BY f.service_month DESC, CAST(f.visit_date AS DATE) DESC,
                                    f.event_time DESC, f.record_id DESC) AS rn
                FROM chronic_followup f SEMI JOIN r
                     ON r.health_id = f.health_id AND r.condition = f.condition
                WHERE _mi(f.service_month) BETWEEN $li - 11 AND $li
            ), x AS (
                SELECT r.*, v.vi, coalesce(v.ok, false) AS ok
                FROM r LEFT JOIN v ON v.health_id = r.health_id
                                  AND v.condition = r.condition AND v.rn = 1
            )
            SELECT station_code, district_code, province_code, month,
                   unnest([condition || '_registered', condition || '_on_treatment',
                           condition || '_lost_to_follow_up']),
                   unnest([count(*), count(*) FILTER (WHERE treated),
                           count(*) FILTER (WHERE vi IS NULL AND ei < $li - 11)]),
                   unnest([NULL, count(*), count(*)])
            FROM x GROUP BY station_code, district_code, province_code, month, condition
            UNION ALL
            SELECT station_code, district_code, province_code, month,
                   unnest([condition || '_followed_up', condition || '_controlled']),
                   unnest([count(*) FILTER (WHERE vi >= $li - 2),
                           count(*) FILTER (WHERE vi >= $li - 2 AND ok)]),
                   unnest([count(*), count(*)])
            FROM x WHERE ei <= $li - 3
            GROUP BY station_code, district_code, province_code, month, condition""",
        "birth+antenatal_visit": f"""
            WITH b AS (
                SELECT {_PLACE}, service_month AS month, mother_health_id AS mid, place,
                       attendant, live_birth, weight_grams
                FROM birth WHERE {in_period}{s}
            ), d AS (
                SELECT {_PLACE}, month, mid, bool_or(place = 'facility') AS fac,
                       bool_or(attendant IN ({skilled})) AS skilled, bool_or(live_birth) AS live
                FROM b GROUP BY ALL
            ), a AS (
                SELECT d.mid, d.month, count(*) AS n
                FROM (SELECT DISTINCT mid, month FROM d WHERE live) d
                JOIN antenatal_visit v ON v.health_id = d.mid
                 AND _mi(v.service_month) BETWEEN _mi(d.month) - 9 AND _mi(d.month)
                GROUP BY ALL
            )
            SELECT {_PLACE}, month,
                   unnest(['facility_deliveries', 'skilled_birth_attendance']),
                   unnest([count(*) FILTER (WHERE fac), count(*) FILTER (WHERE skilled)]),
                   unnest([count(*), count(*)])
            FROM d GROUP BY {_PLACE}, month
            UNION ALL
            SELECT d.station_code, d.district_code, d.province_code, d.month, 'anc4',
                   count(*) FILTER (WHERE coalesce(a.n, 0) >= 4), count(*)
            FROM d LEFT JOIN a ON a.mid = d.mid AND a.month = d.month WHERE d.live
            GROUP BY ALL
            UNION ALL
            SELECT {_PLACE}, month,
                   unnest(['low_birth_weight', 'infant_mortality']),
                   unnest([count(*) FILTER (WHERE live_birth
                                            AND weight_grams < {codes.LOW_BIRTH_WEIGHT_BELOW_G}),
                           0]),
                   unnest([count(*) FILTER (WHERE live_birth AND weight_grams IS NOT NULL),
                           count(*) FILTER (WHERE live_birth)])
            FROM b GROUP BY {_PLACE}, month""",
        "death": f"""
            SELECT {_PLACE}, service_month, 'infant_mortality', count(*), 0
            FROM death WHERE {in_period} AND (age_days IS NOT NULL OR age_years = 0){s}
            GROUP BY ALL""",
        "disease_case": f"""
            WITH c AS (
                SELECT {_PLACE}, service_month, disease FROM disease_case
                WHERE {in_period} AND classification IN ({incident}){s}
            )
            SELECT {_PLACE}, service_month, 'incidence_' || lower(disease), count(*), NULL
            FROM c GROUP BY ALL
            UNION ALL
            SELECT {_PLACE}, service_month, 'incidence_all', count(*), NULL
            FROM c GROUP BY ALL""",
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
                   unnest(['station_doctors_per_10000', 'stations_with_doctor',
                           'stations_with_midwife']),
                   unnest([{doc}, CASE WHEN {doc} >= 1 THEN 1 ELSE 0 END,
                           CASE WHEN {mw} >= 1 THEN 1 ELSE 0 END]),
                   unnest([NULL, NULL, NULL])
            FROM s WHERE _rn = 1""",
        "bed_snapshot": f"""
            WITH s AS ({_snapshot_latest("bed_snapshot", scope)})
            SELECT {_PLACE}, period, 'station_beds_per_10000', coalesce(beds_total, 0), NULL
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


def current_reads(kind: str) -> frozenset[str]:
    """The record types whose current views a report of ``kind`` reads (its facts', and
    ``report_submission`` for the arrivals every report collects): what its snapshot decides
    (``sinks.catalog.snapshot``; a view read beyond them is still exact, only slower)."""
    queries = {
        "health": _health_sql(set(), ScopeFilter()),
        "resources": _resources_sql(ScopeFilter()),
    }
    needs = queries.get(kind, {})
    return frozenset(rt for key in needs for rt in key.split("+")) | {"report_submission"}


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
    for macro in _MACROS:
        con.execute(macro)
    params: dict[str, object] = {
        "first": period.first,
        "last": period.last,
        "fi": month_index(period.first),
        "li": month_index(period.last),
    }
    for needs, sql in queries.items():
        missing = [rt for rt in needs.split("+") if rt in FLOW_TYPES + SNAPSHOT_TYPES]
        missing = [rt for rt in missing if rt not in have]
        if missing:
            logger.warning("catalog lacks %s: skipping facts=%s", missing, needs)
            continue
        used = {k: v for k, v in params.items() if re.search(rf"\${k}\b", sql)}
        con.execute(f"INSERT INTO {FACTS} {sql}", used)
    rows = con.execute(f"SELECT count(*) FROM {FACTS}").fetchall()
    return int(rows[0][0])


def collect_arrivals(con: duckdb.DuckDBPyConnection, period: Period, scope: ScopeFilter) -> int:
    """(Re)build the arrivals table: per station placement and month of the period, the
    station's live report submission for that month and when its first version reached the
    broker (``received_time`` of the record's first change)."""
    con.execute(
        f"CREATE OR REPLACE TEMP TABLE {ARRIVALS} (station_code VARCHAR, district_code VARCHAR, "
        "province_code VARCHAR, month VARCHAR, first_received TIMESTAMPTZ)"
    )
    if not {"report_submission", "report_submission_changes"} <= _relations(con):
        return 0
    con.execute(
        f"INSERT INTO {ARRIVALS} SELECT s.station_code, s.district_code, s.province_code, "
        "s.period, f.first_received FROM report_submission s JOIN ("
        "SELECT record_id, min(received_time) AS first_received "
        "FROM report_submission_changes GROUP BY record_id) f USING (record_id) "
        f"WHERE s.period BETWEEN $first AND $last{scope.sql('s')}",
        {"first": period.first, "last": period.last},
    )
    rows = con.execute(f"SELECT count(*) FROM {ARRIVALS}").fetchall()
    return int(rows[0][0])
