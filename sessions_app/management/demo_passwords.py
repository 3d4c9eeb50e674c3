"""The demo accounts' passwords, kept in one private file (mode 0600) between `seed_demo` runs.

A password is made once and kept; `seed_demo --renew-passwords` makes new ones. The file is
JSON, `{"username": "password", ...}`, written whole (to a temporary file, then renamed) so a
crash never leaves half of it.
"""

from __future__ import annotations

import json
import os
import secrets
from pathlib import Path

FILE_MODE = 0o600


def load(path: Path) -> dict[str, str]:
    """The kept passwords; none if the file is missing or unreadable (they are made again)."""
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError):
        return {}
    if not isinstance(data, dict):
        return {}
    return {k: v for k, v in data.items() if isinstance(k, str) and isinstance(v, str) and v}


def save(path: Path, passwords: dict[str, str]) -> None:
    """Write `passwords` to `path`, readable and writable by the owner only."""
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, FILE_MODE)
    try:
        os.fchmod(fd, FILE_MODE)  # whatever the umask
        with os.fdopen(fd, "w") as out:
            json.dump(passwords, out, indent=2, sort_keys=True)
            out.write("\n")
        os.replace(temporary, path)
    except BaseException:
        temporary.unlink(missing_ok=True)
        raise


def new_password() -> str:
    return secrets.token_urlsafe(12)
