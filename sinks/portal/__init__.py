"""``tuyen portal``: the authenticated web way to the reports.

Accounts with a scope (a subtree of the hierarchy) and roles; dashboards that drill down the
tree and across periods; downloads identical to ``tuyen report``; approval; a public page
of the sector's resources with small-cell suppression; every data request in the
hash-chained access log. See docs/portal.md.

    >>> from sinks.portal import Portal, PortalConfig, create_app   # doctest: +SKIP
    >>> app = create_app(Portal(PortalConfig(state_dir=..., store_root=..., session_key=...)))
"""

from sinks.portal.config import PortalConfig
from sinks.portal.service import Portal
from sinks.portal.web.app import create_app

__all__ = ["Portal", "PortalConfig", "create_app"]
