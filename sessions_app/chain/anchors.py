"""Anchors: the chain's head, appended as JSON lines to a file the database cannot reach.

An anchor proves that event #N existed with this hash when it was written, so removing the newest
events or re-chaining them (even with the key) shows at the next `verify_audit`. The file is
opened with O_APPEND only; shipping it off the host (syslog, object storage with retention) is
what keeps it out of a database operator's hands (docs/audit.md).
"""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass
from pathlib import Path

from django.conf import settings
from django.utils import timezone

from sessions_app.chain.hashing import utc_iso
from sessions_app.models import AuditEvent


@dataclass(frozen=True)
class Anchor:
    """One line of the anchor file: the chain head at `anchored_at`."""

    sequence: int
    id: int
    row_hash: str
    key_id: str
    created_at: str
    anchored_at: str
    line: int = 0


class AnchorFileError(ValueError):
    """A line of the anchor file is not an anchor: the file itself was tampered with."""


def anchor_path() -> Path:
    return Path(settings.AUDIT_ANCHOR_PATH)


def anchor_head(model: type[AuditEvent] = AuditEvent) -> Anchor | None:
    """Append the current head to the anchor file; None (and nothing written) if the log is empty.

    `model` lets migration 0009 pass its historical model."""
    head = (
        model._base_manager.order_by("-sequence")
        .values("sequence", "id", "row_hash", "key_id", "created_at")
        .first()
    )
    if head is None:
        return None
    anchor = Anchor(
        sequence=head["sequence"],
        id=head["id"],
        row_hash=head["row_hash"],
        key_id=head["key_id"],
        created_at=utc_iso(head["created_at"]),
        anchored_at=utc_iso(timezone.now()),
    )
    fields = asdict(anchor)
    del fields["line"]
    path = anchor_path()
    path.parent.mkdir(parents=True, exist_ok=True)
    # O_APPEND: every write lands at the end, whoever else has the file open; never truncated.
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o640)
    try:
        os.write(fd, (json.dumps(fields, sort_keys=True) + "\n").encode())
        os.fsync(fd)
    finally:
        os.close(fd)
    return anchor


def read_anchors(path: Path | None = None) -> list[Anchor]:
    """Every anchor in the file, in file order; [] if there is no file yet.

    Raises AnchorFileError naming the first line that is not an anchor."""
    path = path if path is not None else anchor_path()
    if not path.exists():
        return []
    anchors = []
    with path.open(encoding="utf-8") as lines:
        for number, text in enumerate(lines, start=1):
            if not text.strip():
                continue
            try:
                fields = json.loads(text)
                anchors.append(
                    Anchor(
                        sequence=int(fields["sequence"]),
                        id=int(fields["id"]),
                        row_hash=str(fields["row_hash"]),
                        key_id=str(fields["key_id"]),
                        created_at=str(fields["created_at"]),
                        anchored_at=str(fields["anchored_at"]),
                        line=number,
                    )
                )
            except (ValueError, KeyError, TypeError) as exc:
                raise AnchorFileError(f"{path} line {number} is not an anchor ({exc}).") from exc
    return anchors
