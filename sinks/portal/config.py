"""The portal's settings (frozen; built by the entry point from ``deploy.settings``)."""

from __future__ import annotations

from datetime import date
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field, SecretStr

from schemas.kafka import KafkaConnection
from sinks.roots import StoreRoots

__all__ = ["PortalConfig"]


class PortalConfig(BaseModel):
    """Everything ``create_app`` needs. Secrets have no default: the entry point reads them
    (or, in explicit development mode, generates them into the state dir)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    state_dir: Path
    store_root: str
    #: each owner's root (``deploy.settings.Settings.store_roots``); without them every
    #: tier is read from ``store_root`` alone (tests, a developer's single-root store)
    province_root: str | None = None
    national_root: str | None = None
    hierarchy_dir: Path | None = None
    #: the facility registry (``TUYEN_FACILITIES``): clinicians of registered hospitals
    facilities: Path | None = None
    session_key: SecretStr
    audit_key: SecretStr | None = None
    secure_cookies: bool = True
    idle_minutes: float = Field(default=30.0, gt=0)
    absolute_hours: float = Field(default=12.0, gt=0)
    max_failures: int = Field(default=5, ge=1)
    lock_minutes: float = Field(default=15.0, gt=0)
    login_delay_base: float = Field(default=0.25, ge=0)
    login_delay_max: float = Field(default=4.0, ge=0)
    suppression_threshold: int = Field(default=5, ge=1)
    suppress_zero: bool = False
    generation_ttl: float = Field(default=5.0, ge=0)
    holidays: frozenset[date] = frozenset()
    # approvals: decisions go to ``signoff_topic`` over ``kafka`` (None: none can be sent),
    # checked against the approvers' registry file ``approver_keys`` (with the development
    # approvers in ``development`` mode; required outside it, see deploy.anchors)
    kafka: KafkaConnection | None = None
    signoff_topic: str = "signoff.decisions"
    approver_keys: str | None = None
    development: bool = False
    approval_months: int = Field(default=3, ge=1, le=24)

    def store_roots(self) -> StoreRoots:
        """Where the portal reads each owner's data (``sinks.roots``)."""
        if self.province_root is None or self.national_root is None:
            return StoreRoots.single(self.store_root)
        return StoreRoots(self.province_root, self.national_root, self.store_root)

    @property
    def access_log(self) -> Path:
        return self.state_dir / "access.log"

    @property
    def database(self) -> Path:
        return self.state_dir / "portal.sqlite"
