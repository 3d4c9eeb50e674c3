"""Benchmark: the support lookup against the Django admin changelist search, on the same data.

    python bench/lookup.py [--users N] [--repeat R] [--admin-repeat A]

Seeds N end users (100k by default), each with an active session and every tenth with two older
ones, into the database named by DATABASE_URL (default: a dedicated SQLite file,
var/bench_lookup.sqlite3). It refuses a database that holds end users it did not create. Seeding
is kept between runs, so a second run only measures.

Then it times, through Django's test Client (the whole server side: middleware, session, views,
queries, templates), the HTMX lookup as a Support user (not a superuser: the permission checks
are paid) and the admin changelist search (as a superuser) for the same queries: a prefix of an
external id, a prefix of an email, an exact session id (the target's three kinds), and, shown
apart, a short id prefix (a full page of rows) and display-name words. It prints p50/p95 per kind
and the ratio admin/lookup, then the support card's p50/p95, the CPU time one request takes in this
process (steadier than wall time on a shared machine) and the queries one lookup and one card run.
"""

from __future__ import annotations

import argparse
import random
import sys
import time
import uuid
from urllib.parse import quote

import django_env  # noqa: E402  (bench/django_env.py, beside this script)
from figures import machine, pct, timed  # noqa: E402  (bench/figures.py)

django_env.setup("lookup")

from django.contrib import admin  # noqa: E402
from django.contrib.auth.models import Group, User  # noqa: E402
from django.core.management import call_command  # noqa: E402
from django.db import connection, transaction  # noqa: E402
from django.test import Client  # noqa: E402
from django.test.utils import CaptureQueriesContext  # noqa: E402
from django.urls import clear_url_caches  # noqa: E402

from sessions_app import roles  # noqa: E402
from sessions_app.models import EndUser, ToolRouterSession  # noqa: E402

PREFIX = "bench_"
FIRST = "Ada Alan Grace Linus Barbara Ken Margaret Dennis Frances Edsger Radia John Katherine Tim"
LAST = "Lovelace Turing Hopper Torvalds Liskov Thompson Hamilton Ritchie Allen Dijkstra Perlman"
BATCH = 10_000
# Kinds shown apart from the target's three (id, email, session id): not in its summary row.
FULL_PAGE, NAME_WORDS = "full page of rows", "display-name words"


def _external_id(i: int) -> str:
    return f"{PREFIX}{i:07d}"


def _session_id(i: int, generation: int) -> str:
    return f"trs_b{generation}{i:07d}{uuid.uuid4().hex[:10]}"


def _refuse_foreign_data() -> None:
    foreign = EndUser.objects.exclude(external_id__startswith=PREFIX)
    if foreign.exists():
        sys.exit(
            f"Refusing to run: {connection.settings_dict['NAME']} holds end users this benchmark "
            "did not create. Point DATABASE_URL at a dedicated database."
        )


def seed(n: int) -> None:
    have = EndUser.objects.count()
    if have >= n:
        print(f"seed: {have} bench users already there")
        return
    rng = random.Random(have)
    first, last = FIRST.split(), LAST.split()
    started = time.perf_counter()
    for start in range(have, n, BATCH):
        stop = min(n, start + BATCH)
        with transaction.atomic():
            users = EndUser.objects.bulk_create(
                EndUser(
                    external_id=_external_id(i),
                    display_name=f"{rng.choice(first)} {rng.choice(last)}",
                    email=f"{'User' if i % 3 else 'user'}{i}@example{i % 50}.com",
                )
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
            sessions = []
            for offset, user in enumerate(users):
                i = start + offset
                old = 2 if i % 10 == 0 else 0
                for g in range(old):
                    sid = _session_id(i, g)
                    sessions.append(
                        ToolRouterSession(
                            end_user_id=user.pk,
                            session_id=sid,
                            mcp_url=f"https://mcp.bench.invalid/tool_router/{sid}/mcp",
                            toolkits=["github"],
                            status=ToolRouterSession.Status.SUPERSEDED,
                        )
                    )
                sid = _session_id(i, old)
                sessions.append(
                    ToolRouterSession(
                        end_user_id=user.pk,
                        session_id=sid,
                        mcp_url=f"https://mcp.bench.invalid/tool_router/{sid}/mcp",
                        toolkits=["github", "gmail"],
                    )
                )
            ToolRouterSession.objects.bulk_create(sessions, batch_size=BATCH)
        if (stop // BATCH) % 10 == 0 or stop == n:
            print(f"seed: {stop}/{n} users ({time.perf_counter() - started:.0f} s)", flush=True)
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE")


def queries(n: int, count: int, rng: random.Random) -> dict[str, list[str]]:
    picks = [rng.randrange(n) for _ in range(count)]
    sessions = list(
        ToolRouterSession.objects.filter(
            end_user__external_id__in=[_external_id(i) for i in picks[:count]]
        ).values_list("session_id", flat=True)[:count]
    )
    return {
        # What support pastes or types: most of an id (a handful of matches).
        "external id prefix": [_external_id(i)[:-1] for i in picks],
        "email prefix": [f"user{i}@" for i in picks],
        "exact session id": sessions,
        # Not part of the target (the issue names the three above); shown for honesty.
        # A short id prefix: a thousand matches, a full page of rows (SUPPORT_SEARCH_LIMIT).
        FULL_PAGE: [_external_id(i)[:-3] for i in picks],
        NAME_WORDS: [f"{rng.choice(FIRST.split())} {rng.choice(LAST.split())[:4]}" for _ in picks],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--users", type=int, default=100_000)
    parser.add_argument("--queries", type=int, default=20, help="distinct queries per kind")
    parser.add_argument("--repeat", type=int, default=5, help="timings per lookup query")
    parser.add_argument("--admin-repeat", type=int, default=1, help="timings per admin query")
    args = parser.parse_args()

    print(f"database: {connection.vendor} {connection.settings_dict['NAME']}")
    print(machine())
    call_command("migrate", verbosity=0)
    _refuse_foreign_data()
    seed(args.users)
    n = EndUser.objects.count()

    baseline = ""
    if not admin.site.is_registered(EndUser):

        class BaselineEndUserAdmin(admin.ModelAdmin):
            search_fields = ["external_id", "email", "display_name", "sessions__session_id"]

        admin.site.register(EndUser, BaselineEndUserAdmin)
        clear_url_caches()
        baseline = " (no EndUser admin in the app: a plain baseline ModelAdmin registered here)"
    search_fields = admin.site._registry[EndUser].search_fields
    print(f"admin changelist search_fields: {list(search_fields)}{baseline}")

    # The lookup runs as a Support user (what support staff pay: the permission checks too); the
    # admin changelist, which Support may not open, as a superuser.
    staff, _ = User.objects.get_or_create(username="bench_support", defaults={"is_staff": True})
    staff.groups.set([Group.objects.get(name=roles.SUPPORT)])
    superuser, _ = User.objects.get_or_create(
        username="bench_admin", defaults={"is_staff": True, "is_superuser": True}
    )
    client, admin_client = Client(), Client()
    client.force_login(staff)
    admin_client.force_login(superuser)
    rng = random.Random(42)
    kinds = queries(n, args.queries, rng)
    # Warm up caches and connections before measuring.
    timed(client, "/support/?q=bench_", 3, {"HX-Request": "true"})
    timed(admin_client, "/admin/sessions_app/enduser/?q=bench_0000001", 1, {})
    cards = [
        f"/support/users/{public_id}/"
        for public_id in EndUser.objects.filter(
            external_id__in=[_external_id(rng.randrange(n)) for _ in range(args.queries)]
        ).values_list("public_id", flat=True)
    ]

    print(
        f"\n{n} end users; {args.queries} queries per kind; lookup x{args.repeat}, "
        f"admin x{args.admin_repeat}\n"
    )
    header = (
        f"{'kind':<20} {'lookup p50':>10} {'p95':>8} {'admin p50':>10} {'p95':>8} "
        f"{'ratio p50':>10} {'p95':>7}"
    )
    print(header)
    print("-" * len(header))
    all_lookup: list[float] = []
    all_admin: list[float] = []
    lookup_cpu: list[float] = []
    page_cpu: list[float] = []
    for kind, qs in kinds.items():
        lookup: list[float] = []
        changelist: list[float] = []
        cpu = {NAME_WORDS: None, FULL_PAGE: page_cpu}.get(kind, lookup_cpu)
        for q in qs:
            lookup += timed(
                client, f"/support/?q={quote(q)}", args.repeat, {"HX-Request": "true"}, cpu
            )
            changelist += timed(
                admin_client, f"/admin/sessions_app/enduser/?q={quote(q)}", args.admin_repeat, {}
            )
        if kind not in (FULL_PAGE, NAME_WORDS):
            all_lookup += lookup
            all_admin += changelist
        _row(kind, lookup, changelist)
    _row("id/email/session", all_lookup, all_admin)

    card: list[float] = []
    card_cpu: list[float] = []
    for url in cards:
        card += timed(client, url, args.repeat, {"HX-Request": "true"}, card_cpu)
    print(f"{'card':<20} {pct(card, 50):>8.1f}ms {pct(card, 95):>6.1f}ms")
    print(
        f"CPU per request in this process, p50 (Django and the driver, not PostgreSQL): lookup "
        f"(id/email/session) {pct(lookup_cpu, 50):.2f} ms, a full page "
        f"{pct(page_cpu, 50):.2f} ms, card {pct(card_cpu, 50):.2f} ms"
    )
    counts = {}
    for label, url in (
        ("lookup (external id)", f"/support/?q={quote(kinds['external id prefix'][0])}"),
        ("lookup (session id)", f"/support/?q={quote(kinds['exact session id'][0])}"),
        ("lookup (name words)", f"/support/?q={quote(kinds[NAME_WORDS][0])}"),
        ("card", cards[0]),
    ):
        with CaptureQueriesContext(connection) as captured:
            client.get(url, headers={"HX-Request": "true"})
        counts[label] = len(captured)
    print(
        "queries per request as a Support user: " + ", ".join(f"{k} {v}" for k, v in counts.items())
    )


def _row(kind: str, lookup: list[float], changelist: list[float]) -> None:
    l50, l95 = pct(lookup, 50), pct(lookup, 95)
    a50, a95 = pct(changelist, 50), pct(changelist, 95)
    print(
        f"{kind:<20} {l50:>8.1f}ms {l95:>6.1f}ms {a50:>8.1f}ms {a95:>6.1f}ms "
        f"{a50 / l50:>9.0f}x {a95 / l95:>6.0f}x"
    )


if __name__ == "__main__":
    main()
