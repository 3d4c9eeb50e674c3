"""The audit chain's integrity: its keys and hash, its anchors outside the database, its check.

`trail.record` links each event with `chain.hashing.chain_hash`; `anchor_audit` writes the head to
an append-only file (`chain.anchors`); `verify_audit` walks the chain against the keys and the
anchors (`chain.verify`); `audit_grants` prints the PostgreSQL role split (`chain.grants`).
"""
