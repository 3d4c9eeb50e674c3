"""Benchmark: the support page of users needing attention, and the landing page's count.

    python bench/attention.py [--users N] [--share S] [--repeat R]

Seeds N end users (100k by default), each with an active session and an attention state as the
sweep leaves it (`AttentionState`): a share S of them (0.3 by default) with a problem (an expired
account, failed executions or a stale session) at a time spread over the last 30 days, the rest
checked and fine. Into the database named by DATABASE_URL (default: a dedicated SQLite file,
var/bench_attention.sqlite3); it refuses a database that holds end users it did not create.
Seeding is kept between runs, so a second run only measures.

Then it times, through Django's test Client (the whole server side: middleware, session, view,
queries, template) as a Support user, the page as a whole page and as the HTMX fragment its
pager swaps in: page 1, page 2 ("Older" from page 1), a page from the middle and the last
(oldest) page, R times each, and the support landing page (the lookup, with the count). It
prints p50/p95 per kind and the queries each request runs. The page never calls Composio, so
no emulator is needed.
"""

from __future__ import annotations

import argparse
import random
import sys
import time
from datetime import timedelta

import django_env  # noqa: E402  (bench/django_env.py, beside this script)
from figures import machine, pct, timed  # noqa: E402  (bench/figures.py)

django_env.setup("attention")

from django.contrib.auth.models import Group, User  # noqa: E402
from django.core.management import call_command  # noqa: E402
from django.db import connection, transaction  # noqa: E402
from django.test import Client  # noqa: E402
from django.test.utils import CaptureQueriesContext  # noqa: E402
from django.utils import timezone  # noqa: E402

from sessions_app import roles  # noqa: E402
from sessions_app.models import AttentionState, EndUser, ToolRouterSession  # noqa: E402
from sessions_app.tool_router import attention  # noqa: E402

PREFIX = "bench_att_"
BATCH = 10_000
REASONS = [
    [{"kind": "account", "text": "github: the connected account is expired (token expired)."}],
    [{"kind": "executions", "text": "7 tool executions failed in the last 24 hours."}],
    [{"kind": "stale", "text": "Composio no longer knows the session (stale)."}],
    [
        {"kind": "account", "text": "gmail: the connected account is revoked."},
        {"kind": "executions", "text": "3 tool executions failed in the last 24 hours."},
    ],
]


def _refuse_foreign_data() -> None:
    if EndUser.objects.exclude(external_id__startswith=PREFIX).exists():
        sys.exit(
            f"Refusing to run: {connection.settings_dict['NAME']} holds end users this benchmark "
            "did not create. Point DATABASE_URL at a dedicated database."
        )


def seed(n: int, share: float) -> None:
    have = EndUser.objects.count()
    if have >= n:
        print(f"seed: {have} bench users already there")
        return
    rng = random.Random(have)
    now = timezone.now()
    started = time.perf_counter()
    for start in range(have, n, BATCH):
        stop = min(n, start + BATCH)
        with transaction.atomic():
            users = EndUser.objects.bulk_create(
                EndUser(external_id=f"{PREFIX}{i:07d}", display_name=f"Bench User {i}")
                for i in range(start, stop)
            )
            if users[0].pk is None:  # a backend without RETURNING
                pks = dict(
                    EndUser.objects.filter(
                        external_id__in=[u.external_id for u in users]
                    ).values_list("external_id", "pk")
                )
                for u in users:
                    u.pk = pks[u.external_id]
            ToolRouterSession.objects.bulk_create(
                ToolRouterSession(
                    end_user_id=u.pk,
                    session_id=f"trs_att{u.pk:09d}",
                    mcp_url=f"https://mcp.bench.invalid/tool_router/trs_att{u.pk:09d}/mcp",
                    toolkits=["github", "gmail"],
                )
                for u in users
            )
            states = []
            for u in users:
                troubled = rng.random() < share
                states.append(
                    AttentionState(
                        end_user_id=u.pk,
                        reasons=rng.choice(REASONS) if troubled else [],
                        problem_at=now - timedelta(seconds=rng.randrange(30 * 86400))
                        if troubled
                        else None,
                        failed_executions=rng.randrange(10) if troubled else 0,
                        checked_at=now - timedelta(seconds=rng.randrange(3600)),
                    )
                )
            AttentionState.objects.bulk_create(states)
        print(f"seed: {stop}/{n} users ({time.perf_counter() - started:.0f} s)", flush=True)
    with connection.cursor() as cursor:
        # As autovacuum would: PostgreSQL then counts from the partial index alone.
        cursor.execute("VACUUM ANALYZE" if connection.vendor == "postgresql" else "ANALYZE")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--users", type=int, default=100_000)
    parser.add_argument("--share", type=float, default=0.3, help="share of users with a problem")
    parser.add_argument("--repeat", type=int, default=30, help="timings per page")
    args = parser.parse_args()

    command = " ".join(["python", *sys.argv])
    name = connection.settings_dict["NAME"]
    print(f"command: DATABASE_URL=<{connection.vendor} {name}> {command}")
    print(f"database: {connection.vendor} {connection.settings_dict['NAME']}")
    print(machine())
    call_command("migrate", verbosity=0)
    _refuse_foreign_data()
    seed(args.users, args.share)
    n = EndUser.objects.count()
    count = attention.attention_count()

    staff, _ = User.objects.get_or_create(username="bench_support", defaults={"is_staff": True})
    staff.groups.set([Group.objects.get(name=roles.SUPPORT)])
    client = Client()
    client.force_login(staff)
    base = "/support/attention/"
    # The pager's cursors, as its links carry them.
    second = attention.attention_page().older
    third = attention.attention_page(after=str(second)).older
    back = attention.attention_page(after=str(third)).newer
    pages = {
        "page 1": base,
        "page 2 (Older)": f"{base}?after={second}",
        "page 3 (Older again)": f"{base}?after={third}",
        "page 2 again (Newer)": f"{base}?before={back}",
        "last page (Oldest)": f"{base}?oldest=1",
    }
    deep = attention.needing_attention()[count // 2]
    pages["a page from the middle"] = f"{base}?after={attention.cursor_of(deep)}"
    timed(client, base, 3, {})  # warm up caches and connections

    print(
        f"\n{n} end users, {count} needing attention, {attention.PAGE_SIZE} a page; "
        f"x{args.repeat}\n"
    )
    header = f"{'request':<40} {'p50':>8} {'p95':>8} {'queries':>8}"
    print(header)
    print("-" * len(header))
    worst = 0.0
    for label, url in pages.items():
        for kind, headers in (("whole page", {}), ("HTMX fragment", {"HX-Request": "true"})):
            samples = timed(client, url, args.repeat, headers)
            worst = max(worst, pct(samples, 95))
            _row(f"{label}, {kind}", samples, _queries(client, url, headers))
    landing = timed(client, "/support/", args.repeat, {})
    _row("landing page (lookup + count)", landing, _queries(client, "/support/", {}))
    verdict = "met" if worst < 200 else "NOT met"
    print(f"\nworst p95 of the attention page: {worst:.1f} ms (target < 200 ms: {verdict})")


def _queries(client: Client, url: str, headers: dict[str, str]) -> int:
    with CaptureQueriesContext(connection) as captured:
        client.get(url, headers=headers)
    return len(captured)


def _row(label: str, samples: list[float], queries: int) -> None:
    print(f"{label:<40} {pct(samples, 50):>6.1f}ms {pct(samples, 95):>6.1f}ms {queries:>8}")


if __name__ == "__main__":
    main()
