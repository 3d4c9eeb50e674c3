"""Instructions per request (valgrind's callgrind) for the lookup and the card, side by side with
a baseline commit.

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/trc_bench_lookup \\
        python bench/instructions.py --baseline 28f269d [--requests 100]

Wall and CPU time on a shared 2-vCPU VM move by 10-30% from one run to the next; the number of
instructions a request executes moves by about 0.1% (callgrind counts them, whatever else the
machine does).
For each tree, the working tree (uncommitted changes included) and `--baseline` checked out in a
temporary git worktree (with the working tree's `.env`, if any), it runs each kind under callgrind
twice in a fresh process, first with no requests after the warm-up, then with `--requests`, and
prints the difference over the requests: the instructions one request costs in Django, the
console and the driver (not PostgreSQL's). Kinds: a lookup that
fills a page of results (a short external id prefix, SUPPORT_SEARCH_LIMIT rows), a lookup by most
of an external id (a handful of rows) and the support card.

Needs the data and the Support user of bench/lookup.py (run it once against the same database)
and valgrind (Debian's `valgrind`).
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
KINDS = ("full page", "id prefix", "card")
HX = {"HX-Request": "true"}


def _inner(root: str, kind: str, requests: int) -> None:
    """Run inside valgrind: the requests of one kind against the tree at `root`."""
    import random
    from urllib.parse import quote

    sys.path.insert(0, root)
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "console.settings")
    import logging

    import django

    django.setup()
    import sessions_app

    if not Path(sessions_app.__file__).resolve().is_relative_to(Path(root).resolve()):
        sys.exit(f"sessions_app came from {sessions_app.__file__}, not from {root}")
    logging.getLogger("console.request").setLevel(logging.WARNING)
    from django.contrib.auth.models import User
    from django.test import Client

    from sessions_app.models import EndUser

    staff = User.objects.filter(username="bench_support").first()
    if staff is None:
        sys.exit("No bench_support user: run bench/lookup.py against this database first.")
    client = Client()
    client.force_login(staff)
    rng = random.Random(7)
    ids = [f"bench_{rng.randrange(EndUser.objects.count()):07d}" for _ in range(20)]
    if kind == "card":
        urls = [
            f"/support/users/{public_id}/"
            for public_id in EndUser.objects.filter(external_id__in=ids).values_list(
                "public_id", flat=True
            )
        ]
    else:
        cut = 3 if kind == "full page" else 1
        urls = [f"/support/?q={quote(external_id[:-cut])}" for external_id in ids]
    if not urls:
        sys.exit("No end users: run bench/lookup.py against this database first.")
    for url in urls:  # warm-up: compiled queries, templates, connections
        client.get(url, headers=HX)
    for n in range(requests):
        response = client.get(urls[n % len(urls)], headers=HX)
        if response.status_code != 200:
            sys.exit(f"{urls[n % len(urls)]} answered {response.status_code}")


def _count(root: Path, kind: str, requests: int) -> int:
    """Instructions callgrind collected for one process running `requests` of `kind`."""
    env = {**os.environ, "PYTHONHASHSEED": "0"}
    argv = [
        "valgrind", "--tool=callgrind", "--callgrind-out-file=/dev/null",
        sys.executable, str(Path(__file__).resolve()), "--inner", str(root), kind, str(requests),
    ]  # fmt: skip
    done = subprocess.run(argv, env=env, capture_output=True, text=True, check=False)
    found = re.search(r"Collected : (\d+)", done.stderr)
    if done.returncode != 0 or found is None:
        sys.exit(f"callgrind failed for {kind} in {root}:\n{done.stderr[-2000:]}")
    return int(found[1])


def main() -> None:
    if len(sys.argv) > 1 and sys.argv[1] == "--inner":
        _inner(sys.argv[2], sys.argv[3], int(sys.argv[4]))
        return
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--baseline", required=True, help="the commit to compare with")
    parser.add_argument("--requests", type=int, default=100, help="requests per kind")
    args = parser.parse_args()
    if not os.environ.get("DATABASE_URL"):
        sys.exit("Set DATABASE_URL to the database bench/lookup.py seeded.")
    if shutil.which("valgrind") is None:
        sys.exit("valgrind is not installed (Debian: apt-get install valgrind).")
    baseline = subprocess.run(
        ["git", "rev-parse", "--short", args.baseline], cwd=ROOT, capture_output=True, text=True
    ).stdout.strip()
    if not baseline:
        sys.exit(f"Unknown commit: {args.baseline}")
    print(f"instructions per request, {args.requests} requests per kind; baseline {baseline}")
    print(f"{'kind':<10} {'baseline':>14} {'this tree':>14} {'ratio':>7}")
    with tempfile.TemporaryDirectory() as scratch:
        before = Path(scratch) / "baseline"
        subprocess.run(
            ["git", "worktree", "add", "--detach", "--quiet", str(before), baseline],
            cwd=ROOT,
            check=True,
        )
        if (ROOT / ".env").exists():  # the settings read it: the same for both trees
            shutil.copy(ROOT / ".env", before / ".env")
        try:
            for kind in KINDS:
                per = {}
                for name, root in (("baseline", before), ("this tree", ROOT)):
                    # None first: a first run in a fresh tree also compiles its bytecode.
                    idle = _count(root, kind, 0)
                    spent = _count(root, kind, args.requests) - idle
                    per[name] = spent / args.requests
                was, now = per["baseline"], per["this tree"]
                print(
                    f"{kind:<10} {was / 1e6:>12.2f} M {now / 1e6:>12.2f} M {now / was:>7.2f}",
                    flush=True,
                )
        finally:
            subprocess.run(
                ["git", "worktree", "remove", "--force", str(before)], cwd=ROOT, check=False
            )


if __name__ == "__main__":
    main()
