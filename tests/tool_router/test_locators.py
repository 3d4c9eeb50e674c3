"""Locators (issue 12): the one masked form of a session id, beside the masked MCP URL, and the
one rule of who sees an id in full (`tool_router.locators`)."""

from __future__ import annotations

import re

import pytest
from django.contrib.auth.models import AnonymousUser, User
from django.template import Context, RequestContext, Template
from django.test import RequestFactory

from sessions_app import roles
from sessions_app.models import ToolRouterSession
from sessions_app.tool_router import locators, mcp_url
from tests.factories import (
    NO_REVEAL_PERMISSIONS,
    make_end_user,
    make_staff,
    make_staff_with,
    store_session,
)

SESSION_ID = "trs_k3x9q2m7w1z8p4r6"


def test_a_masked_id_is_its_kind_and_the_keyed_fingerprint_in_the_masked_urls_format(
    settings,
) -> None:
    masked = mcp_url.mask_id(SESSION_ID)
    url = f"https://mcp.example.test/tool_router/{SESSION_ID}/mcp"

    assert masked is not None
    assert str(masked) == f"trs_…#{mcp_url.fingerprint(SESSION_ID)}"
    assert re.fullmatch(r"trs_…#[0-9a-f]{12}", str(masked))
    # The same one format as the URL's: what is shown, "…", "#" and the 12-hex fingerprint.
    assert re.fullmatch(r"https://mcp\.example\.test/…#[0-9a-f]{12}", str(mcp_url.mask(url)))
    assert SESSION_ID[4:] not in str(masked)
    assert mcp_url.masked_id_text("") == "" and mcp_url.mask_id("") is None
    assert mcp_url.masked_id_text("0123456789abcdef").startswith("…#")
    # Keyed: another key, another fingerprint.
    settings.MCP_FINGERPRINT_KEY = "another-key"
    assert mcp_url.masked_id_text(SESSION_ID) != str(masked)


def test_ids_in_free_text_are_masked_known_ones_short_forms_and_composio_shaped_ones() -> None:
    other = "trs_aaaa1111bbbb2222"
    text = (
        f"Replaced {SESSION_ID} with {other}; session {SESSION_ID[:12]} was deleted; "
        "custom id u-1-session kept; trs_1 and trs_10 are not trs_10x."
    )

    masked = mcp_url.mask_ids_in(text, known=[SESSION_ID, "u-1-session"])

    for session_id in (SESSION_ID, other, "u-1-session", "trs_1", "trs_10", "trs_10x"):
        assert mcp_url.masked_id_text(session_id) in masked
    # A known id with characters Composio's ids never have is masked only where it stands whole.
    odd = "trs_a@b.c_0"
    mixed = mcp_url.mask_ids_in(f"was {odd}, not {odd}1 nor x{odd}", known=[odd])
    masked_odd, masked_run = mcp_url.masked_id_text(odd), mcp_url.masked_id_text("trs_a")
    assert mixed == f"was {masked_odd}, not {masked_run}@b.c_01 nor x{odd}"
    # The short form is masked as the id it shortens: one fingerprint per session everywhere.
    assert masked.count(mcp_url.masked_id_text(SESSION_ID)) == 2
    assert SESSION_ID[4:12] not in masked and other[4:] not in masked
    # Masking is idempotent: a masked id is left as it is.
    assert mcp_url.mask_ids_in(masked, known=[SESSION_ID]) == masked


@pytest.mark.django_db
def test_only_staff_who_may_reveal_mcp_urls_see_a_session_id_in_full() -> None:
    root = User.objects.create_superuser("root_locator", password=None)
    inactive = make_staff("ina_inactive", roles.SUPPORT)
    inactive.is_active = False
    inactive.save()
    seeing = [make_staff("sup_1", roles.SUPPORT), make_staff("adm_1", roles.SESSION_ADMIN), root]
    masked = [
        make_staff("aud_1", roles.AUDITOR),
        make_staff_with("nora_noreveal", NO_REVEAL_PERMISSIONS),
        make_staff("out_1"),
        inactive,
        AnonymousUser(),
        None,
    ]

    for user in seeing:
        assert locators.locator(SESSION_ID, user) == SESSION_ID
        assert locators.locator(SESSION_ID, user, short=True) == SESSION_ID[:12]
        assert locators.locators_in(f"Deleted {SESSION_ID}", user) == f"Deleted {SESSION_ID}"
    for user in masked:
        assert locators.locator(SESSION_ID, user) == mcp_url.masked_id_text(SESSION_ID)
        assert locators.locator(SESSION_ID, user, short=True) == mcp_url.masked_id_text(SESSION_ID)
        assert SESSION_ID not in locators.locators_in(f"Deleted {SESSION_ID}", user)


def test_an_events_details_are_masked_wherever_they_name_a_session() -> None:
    old, remote = "custom-old-1", "trs_remote0000000001"
    details = {
        "replaces": old,
        "remote_session_id": remote,
        "notes": [f"was {old}", {"deep": f"then {remote}"}],
        "count": 3,
    }

    named = locators.event_ids(SESSION_ID, details)
    masked = locators.masked_details(details, named)

    assert named == [SESSION_ID, old, remote]
    assert old not in repr(masked) and remote not in repr(masked)
    assert masked["replaces"] == mcp_url.masked_id_text(old)
    assert masked["notes"][1]["deep"] == f"then {mcp_url.masked_id_text(remote)}"
    assert masked["count"] == 3


@pytest.mark.django_db
def test_a_sessions_str_names_no_session_id() -> None:
    session = store_session(make_end_user("usr_str"), SESSION_ID)

    assert SESSION_ID not in str(session) and SESSION_ID[4:12] not in str(session)
    assert str(session) == f"session #{session.pk} ({ToolRouterSession.Status.ACTIVE})"


@pytest.mark.django_db
def test_the_locator_tag_asks_again_when_the_request_changes_hands(
    support_user: User, auditor: User
) -> None:
    """The tag keeps its answer on the request, with the user it was asked for: a request whose
    user is replaced (a sign-out, a sign-in) is answered for its new user."""
    sid = "trs_handover0123456789"
    page = Template("{% load locators %}{% locator sid %}")
    request = RequestFactory().get("/")
    request.user = User.objects.get(pk=support_user.pk)
    assert page.render(RequestContext(request, {"sid": sid})) == sid
    request.user = User.objects.get(pk=auditor.pk)
    assert page.render(RequestContext(request, {"sid": sid})) == mcp_url.masked_id_text(sid)
    request.user = AnonymousUser()
    assert page.render(RequestContext(request, {"sid": sid})) == mcp_url.masked_id_text(sid)
    # Outside a request (no `request` in the context), always masked.
    assert page.render(Context({"sid": sid})) == mcp_url.masked_id_text(sid)
    # Free text naming the id, by the same answer.
    text = Template("{% load locators %}{% locators_in reason sid %}")
    request.user = User.objects.get(pk=support_user.pk)
    assert text.render(RequestContext(request, {"reason": f"ended {sid}", "sid": sid})) == (
        f"ended {sid}"
    )
    request.user = User.objects.get(pk=auditor.pk)
    masked = text.render(RequestContext(request, {"reason": f"ended {sid}", "sid": sid}))
    assert sid not in masked and masked.startswith("ended ")
