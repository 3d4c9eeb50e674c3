"""The auditor's pages: the audit log, the access reports, their charts and CSV exports.

Writing the audit trail is `sessions_app.trail`, below every feature.
"""

from __future__ import annotations

from typing import Any

# Migration 0004 imports these from `sessions_app.audit`, the module that became `trail`.
_MIGRATION_NAMES = frozenset({"GENESIS_HASH", "chain_hash"})


def __getattr__(name: str) -> Any:
    if name in _MIGRATION_NAMES:
        from sessions_app import trail

        return getattr(trail, name)
    raise AttributeError(name)
