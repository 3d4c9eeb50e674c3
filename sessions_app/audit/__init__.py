"""The audit trail: writing it (`log`), the report queries, charts, and the auditor's pages."""

from __future__ import annotations

from typing import Any

# Migration 0004 imports these from `sessions_app.audit` (the module this package replaced).
_MIGRATION_NAMES = frozenset({"GENESIS_HASH", "chain_hash"})


def __getattr__(name: str) -> Any:
    if name in _MIGRATION_NAMES:
        from sessions_app.audit import log

        return getattr(log, name)
    raise AttributeError(name)
