"""Django for a benchmark script run as `python bench/<name>.py`: the project on the path, the
database from DATABASE_URL (else var/bench_<name>.sqlite3), and the per-request log lines off
(one line per request would drown the figures)."""

from __future__ import annotations

import logging
import os
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def setup(name: str) -> None:
    sys.path.insert(0, str(ROOT))
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "console.settings")
    if not os.environ.get("DATABASE_URL"):
        (ROOT / "var").mkdir(exist_ok=True)
        os.environ["DATABASE_URL"] = f"sqlite:///{ROOT / 'var' / f'bench_{name}.sqlite3'}"

    import django

    django.setup()
    for logger in ("console.request", "axes"):
        logging.getLogger(logger).setLevel(logging.WARNING)
