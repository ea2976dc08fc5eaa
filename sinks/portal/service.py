"""The portal's parts wired together once per process: accounts, sessions, tokens, stores,
reports, approvals, the access log and the public tables."""

from __future__ import annotations

import threading
from datetime import date, datetime
from pathlib import Path

from schemas.hierarchy import VN_TZ, Hierarchy
from schemas.signoff import load_approver_registry
from sinks.portal.accounts import Accounts, LoginPolicy
from sinks.portal.approvals import Approvals
from sinks.portal.audit import AuditWriter
from sinks.portal.config import PortalConfig
from sinks.portal.db import Database, private_dir
from sinks.portal.patient import PatientSummary, StoreSummaries
from sinks.portal.public import SNAPSHOTS, PublicTable, build_tables, snapshot_months
from sinks.portal.reporting import Reports
from sinks.portal.scope import Account, Scope
from sinks.portal.sessions import Sessions, Tokens
from sinks.portal.signing import ApproverKeys
from sinks.portal.stores import StoreAccess
from sinks.reports import AccessLog, ReportConfig
from sinks.signoff.service import DecisionPublisher

__all__ = ["Portal", "load_hierarchy"]


def load_hierarchy(directory: Path | None, facilities: Path | None = None) -> Hierarchy:
    """The reference hierarchy, or a province's own units/links/population CSV files; with
    the facility registry's facilities (hospitals) when ``facilities`` names one."""
    from schemas import facilities as registry

    base = None if directory is None else Hierarchy.from_directory(directory)
    return registry.load_hierarchy(facilities, base)


def this_month() -> str:
    return datetime.now(VN_TZ).strftime("%Y-%m")


class Portal:
    """One per process; shared by the request threads."""

    def __init__(
        self,
        config: PortalConfig,
        *,
        hierarchy: Hierarchy | None = None,
        approvals: Approvals | None = None,
        patient_summary: PatientSummary | None = None,
    ) -> None:
        self.config = config
        self.h = hierarchy or load_hierarchy(config.hierarchy_dir, config.facilities)
        private_dir(config.state_dir)
        self.db = Database(config.database)
        policy = LoginPolicy(
            max_failures=config.max_failures,
            lock_seconds=config.lock_minutes * 60,
            delay_base=config.login_delay_base,
            delay_max=config.login_delay_max,
        )
        self.accounts = Accounts(self.db, self.h, policy=policy)
        self.sessions = Sessions(
            self.db,
            self.accounts,
            config.session_key.get_secret_value().encode(),
            idle_seconds=config.idle_minutes * 60,
            absolute_seconds=config.absolute_hours * 3600,
        )
        self.tokens = Tokens(self.db, self.accounts)
        self.stores = StoreAccess(
            config.store_roots(),
            self.h,
            hierarchy_dir=config.hierarchy_dir,
            generation_ttl=config.generation_ttl,
        )
        report_config = ReportConfig(
            holidays=config.holidays, suppression_threshold=config.suppression_threshold
        )
        self.approver_keys = ApproverKeys(self.db)
        self.approvals = approvals or Approvals(
            self.stores,
            self.h,
            self.approver_keys,
            registry=load_approver_registry(config.approver_keys, development=config.development)
            if config.approver_keys or config.development
            else None,
            publisher=self._publisher if config.kafka is not None else None,
            config=report_config,
            months=config.approval_months,
        )
        self.reports = Reports(self.stores, self.h, report_config)
        key = config.audit_key.get_secret_value().encode() if config.audit_key else None
        self.log = AccessLog(config.access_log, key=key)
        self.audit_writer = AuditWriter(self.log)
        self.patient_summary: PatientSummary = patient_summary or StoreSummaries(
            self.stores, self.h
        )
        self._public: dict[tuple[str, str], dict[str, PublicTable]] = {}
        self._public_lock = threading.Lock()

    def _publisher(self) -> DecisionPublisher:
        from sinks.signoff.publisher import KafkaDecisionPublisher

        assert self.config.kafka is not None
        return KafkaDecisionPublisher(self.config.kafka, self.config.signoff_topic)

    def audit(self, account: Account | None, action: str, outcome: str, **fields: object) -> None:
        """One access-log entry; the principal is the authenticated account (or public)."""
        entry: dict[str, object] = {
            "principal": str(account.scope) if account else "public",
            "account": account.username if account else None,
            "via": ("token" if account.via_token else "session") if account else "anonymous",
            "action": action,
            "outcome": outcome,
        }
        entry.update({k: v for k, v in fields.items() if v is not None})
        self.audit_writer.write(entry)

    def latest_month(self, scope: Scope) -> str:
        """The latest closed month with data in the scope's store (the month in progress
        only when nothing older is there)."""
        key = self.stores.key(scope, "province", date.today())
        now = this_month()
        months = self.stores.months(key)
        closed = [m for m in months if m < now]
        return closed[-1] if closed else now

    def public_months(self) -> list[str]:
        with self.stores.cursor(self.stores.public_key(), reads=SNAPSHOTS) as con:
            return [m for m in snapshot_months(con) if m <= this_month()]

    def public_tables(self, month: str) -> dict[str, PublicTable]:
        key = self.stores.public_key()
        cache_key = (month, self.stores.generation(key))
        with self._public_lock:
            hit = self._public.get(cache_key)
            if hit is not None:
                return hit
            with self.stores.cursor(key, reads=SNAPSHOTS) as con:
                tables = build_tables(
                    con,
                    month,
                    month,
                    threshold=self.config.suppression_threshold,
                    suppress_zero=self.config.suppress_zero,
                )
            if len(self._public) > 24:
                self._public.clear()
            self._public[cache_key] = tables
        return tables

    def close(self) -> None:
        self.audit_writer.close()
        self.stores.close()
        self.db.close()
