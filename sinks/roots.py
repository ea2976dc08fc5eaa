"""Store roots by owner: whose data lives where.

Each owner has a root of its own (a directory or a bucket, with its own credentials), and
every root has the same layout inside (``sinks.store``):

- a province's health department (Sở Y tế): ``<base>/province-<code>``
  (``TUYEN_PROVINCE_ROOT``, a template with ``{code}``): its record-level tiers
  ``district/`` and ``province/`` (its own rows and those of the pre-2025 provinces merged
  into it), written by its own sink ``tuyen-sink-province-<code>``, and its sign-off
  ledger ``signoff/`` (its stations' approvals and locks), written by ``tuyen-sink-signoff``;
- the Ministry: ``<base>/national`` (``TUYEN_NATIONAL_ROOT``): the pseudonymised
  ``national/`` tier and the live counters ``aggregates/``, written by
  ``tuyen-sink-national`` and ``tuyen-sink-aggregates``;
- the operators: ``<base>/quarantine`` (``TUYEN_QUARANTINE_ROOT``): the dead letters
  ``dlq/`` (rejected input with its original bytes), written by ``tuyen-sink-dlq``.

Codes are today's (after the 2025 merger): a record recorded under a pre-2025 province lands
in the root of the province that owns it now. ``StoreRoots.single(root)`` puts every owner in
one root (tests, a developer's machine).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from schemas.hierarchy.merger import restate_province
from schemas.topics import province_codes
from sinks.store import AGGREGATES_DIR, DLQ_DIR, SIGNOFF_DIR

__all__ = ["CODE", "COUNTRY_OWNERS", "StoreRoots"]

#: The placeholder of the province code in a province root template.
CODE = "{code}"

#: The owners with one root for the whole country (beside each province's own).
COUNTRY_OWNERS = ("national", "quarantine")


def _join(base: str, name: str) -> str:
    return base.rstrip("/") + "/" + name


@dataclass(frozen=True, slots=True)
class StoreRoots:
    """The roots of every owner: ``province`` is a template holding ``{code}`` (or one root
    shared by every province)."""

    province: str
    national: str
    quarantine: str

    @classmethod
    def under(
        cls,
        base: str,
        *,
        province: str | None = None,
        national: str | None = None,
        quarantine: str | None = None,
    ) -> StoreRoots:
        """The default layout under ``base``, each owner's root overridable (buckets)."""
        return cls(
            province=province or _join(base, f"province-{CODE}"),
            national=national or _join(base, "national"),
            quarantine=quarantine or _join(base, "quarantine"),
        )

    @classmethod
    def single(cls, root: str) -> StoreRoots:
        """Every owner in one root (no separation: tests and development only)."""
        return cls(province=root, national=root, quarantine=root)

    def province_root(self, code: str) -> str:
        """The root of province ``code`` (a pre-2025 code: the province that owns it now)."""
        return self.province.replace(CODE, restate_province(code))

    def province_roots(self, codes: Iterable[str] | None = None) -> list[str]:
        """The distinct roots of ``codes`` (default: every province of today's map)."""
        found: dict[str, None] = {}
        for code in province_codes() if codes is None else codes:
            found[self.province_root(code)] = None
        return list(found)

    def for_store(self, tier: str, provinces: Iterable[str] | None = None) -> list[str]:
        """The roots holding ``tier`` (``district``, ``province``, ``national``,
        ``aggregates``, ``dlq``, ``signoff``), for ``provinces`` (default: all): what a
        reader with that scope opens, and nothing more. This is the "store roots for a
        scope" the portal and the catalogs use."""
        if tier in {"national", AGGREGATES_DIR}:
            return [self.national]
        if tier == DLQ_DIR:
            return [self.quarantine]
        if tier in {"district", "province", SIGNOFF_DIR}:
            return self.province_roots(provinces)
        raise ValueError(f"unknown store {tier!r}")

    def owners(self) -> dict[str, str]:
        """Owner → root, for printing (the province template as it is)."""
        return {"province": self.province, "national": self.national, "quarantine": self.quarantine}
