"""The auditor's pages: the audit log, the access reports, their charts and CSV exports.

Writing the audit trail is `sessions_app.trail`, below every feature.
"""

from __future__ import annotations

from typing import Any

# Migration 0004 imports these from `sessions_app.audit`, the module that became `trail`. It
# chained the events of its day with the unkeyed sha256 (migration 0009 keyed the chain after it).
_MIGRATION_NAMES = {"GENESIS_HASH": "GENESIS_HASH", "chain_hash": "unkeyed_hash"}


def __getattr__(name: str) -> Any:
    if name in _MIGRATION_NAMES:
        from sessions_app.chain import hashing

        return getattr(hashing, _MIGRATION_NAMES[name])
    raise AttributeError(name)
