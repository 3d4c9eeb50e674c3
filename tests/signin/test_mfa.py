"""MFA: TOTP (codes computed with pyotp), recovery codes, django-axes on the code step, the
MFA_REQUIRED enrolment rule, SSO_ONLY with its break-glass superuser, and the audit of each."""

from __future__ import annotations

import time
from http import HTTPStatus

import pyotp
import pytest
from cryptography.fernet import InvalidToken
from django.contrib.auth.models import User
from django.test import Client
from django.urls import reverse

from sessions_app import roles
from sessions_app.models import AuditEvent
from tests.factories import HX, client_for, make_staff

IP = "198.51.100.23"


def sign_in(username: str, password: str | None = None, **extra: str) -> tuple[Client, object]:
    client = Client(REMOTE_ADDR=IP)
    response = client.post(
        reverse("login"), {"login": username, "password": password or "pw-" + username}, **extra
    )
    return client, response


def enrol_totp(client: Client) -> str:
    """Activate TOTP through allauth's own page with a real code; the secret."""
    page = client.get(reverse("mfa_activate_totp"))
    assert page.status_code == HTTPStatus.OK, page
    secret = page.context["form"].secret
    done = client.post(reverse("mfa_activate_totp"), {"code": pyotp.TOTP(secret).now()})
    assert done.status_code == HTTPStatus.FOUND, done.content[:500]
    return secret


def other_window_code(secret: str) -> str:
    """A code that is valid, but for a time window two steps away (TOTP_TOLERANCE is 0)."""
    return pyotp.TOTP(secret).at(time.time() - 90)


@pytest.fixture
def mfa_user(db: None, django_capture_on_commit_callbacks) -> tuple[User, str]:
    user = make_staff("tina_totp", roles.SUPPORT)
    client, response = sign_in("tina_totp")
    assert response.status_code == HTTPStatus.FOUND
    # allauth signals (and so audits) an enrolment once its transaction commits.
    with django_capture_on_commit_callbacks(execute=True):
        secret = enrol_totp(client)
    return user, secret


def _events(action: str) -> list[AuditEvent]:
    return list(AuditEvent.objects.filter(action=action).order_by("sequence"))


def test_enrolling_totp_is_audited_and_gives_recovery_codes(mfa_user) -> None:
    user, _secret = mfa_user
    added = _events("auth.mfa_added")
    assert {e.details["type"] for e in added} == {"totp", "recovery_codes"}
    assert all(e.actor == user and e.ip_address == IP for e in added)


def test_the_second_factors_secrets_are_stored_encrypted(mfa_user, settings) -> None:
    """Read straight from the table (a backup, an insider with SQL): no TOTP key or recovery
    seed in the clear; after a key rotation the old key still decrypts."""
    from allauth.mfa.models import Authenticator
    from django.db import connection

    user, secret = mfa_user
    with connection.cursor() as cursor:
        cursor.execute("SELECT type, data FROM mfa_authenticator WHERE user_id = %s", [user.pk])
        rows = dict(cursor.fetchall())
    assert secret not in str(rows["totp"]) and "enc1:" in str(rows["totp"])
    seed = Authenticator.objects.get(user=user, type="recovery_codes").wrap().instance.data["seed"]
    assert seed.startswith("enc1:")

    settings.MFA_SECRET_KEYS = ["a-new-key", settings.SECRET_KEY]
    client, _ = sign_in(user.username)
    ok = client.post(reverse("mfa_authenticate"), {"code": pyotp.TOTP(secret).now()})
    assert ok.status_code == HTTPStatus.FOUND
    settings.MFA_SECRET_KEYS = ["a-new-key"]  # the key it was written with is gone
    with pytest.raises(InvalidToken):
        Authenticator.objects.get(user=user, type="totp").wrap().validate_code("000000")


def test_sign_in_asks_for_the_code_and_takes_a_real_one(mfa_user) -> None:
    user, secret = mfa_user
    client, response = sign_in(user.username)
    assert response.status_code == HTTPStatus.FOUND
    assert response["Location"] == reverse("mfa_authenticate")
    assert "_auth_user_id" not in client.session  # not signed in before the second factor
    # A code from the wrong time window is refused.
    wrong = client.post(reverse("mfa_authenticate"), {"code": other_window_code(secret)})
    assert wrong.status_code == HTTPStatus.OK and "_auth_user_id" not in client.session
    ok = client.post(reverse("mfa_authenticate"), {"code": pyotp.TOTP(secret).now()})
    assert ok.status_code == HTTPStatus.FOUND
    assert client.session["_auth_user_id"] == str(user.pk)
    login = _events("auth.login")[-1]
    assert login.details == {"methods": ["password", "mfa"]} and login.ip_address == IP
    failed = _events("auth.login_failed")[-1]
    assert failed.reason == "Wrong authentication code."
    assert failed.details == {"username": user.username, "step": "mfa"}


def test_a_replayed_code_is_refused(mfa_user) -> None:
    user, secret = mfa_user
    code = pyotp.TOTP(secret).now()
    first, _ = sign_in(user.username)
    assert first.post(reverse("mfa_authenticate"), {"code": code}).status_code == HTTPStatus.FOUND
    second, _ = sign_in(user.username)
    again = second.post(reverse("mfa_authenticate"), {"code": code})
    assert again.status_code == HTTPStatus.OK
    assert "_auth_user_id" not in second.session


def test_a_recovery_code_signs_in_once_and_is_audited(mfa_user) -> None:
    from allauth.mfa.models import Authenticator

    user, _secret = mfa_user
    codes = Authenticator.objects.get(user=user, type="recovery_codes").wrap().get_unused_codes()
    client, _ = sign_in(user.username)
    ok = client.post(reverse("mfa_authenticate"), {"code": codes[0]})
    assert ok.status_code == HTTPStatus.FOUND
    [used] = _events("auth.recovery_code_used")
    assert used.actor == user and used.ip_address == IP
    assert used.details["codes_left"] == len(codes) - 1
    again, _ = sign_in(user.username)
    assert again.post(reverse("mfa_authenticate"), {"code": codes[0]}).status_code == 200
    assert "_auth_user_id" not in again.session


def test_axes_locks_the_code_step_out_after_repeated_wrong_codes(mfa_user, settings) -> None:
    user, secret = mfa_user
    client, _ = sign_in(user.username)
    for _ in range(settings.AXES_FAILURE_LIMIT):
        client.post(reverse("mfa_authenticate"), {"code": "000000"})
    locked = client.post(reverse("mfa_authenticate"), {"code": pyotp.TOTP(secret).now()})
    assert locked.status_code == HTTPStatus.TOO_MANY_REQUESTS
    assert b"Too many failed logins" in locked.content
    assert "_auth_user_id" not in client.session
    # The password step of the same pair is locked too; another address is not.
    _, again = sign_in(user.username)
    assert again.status_code == HTTPStatus.TOO_MANY_REQUESTS
    elsewhere = Client(REMOTE_ADDR="192.0.2.80").post(
        reverse("login"), {"login": user.username, "password": "pw-" + user.username}
    )
    assert elsewhere["Location"] == reverse("mfa_authenticate")


# --- MFA_REQUIRED -------------------------------------------------------------------------------


def test_mfa_required_sends_a_staff_user_without_a_factor_to_enrol(settings, support_user) -> None:
    settings.MFA_REQUIRED = True
    client = client_for(support_user)
    response = client.get(reverse("sessions_app:support_lookup"))
    assert response.status_code == HTTPStatus.FOUND
    assert response["Location"] == reverse("mfa_index")
    htmx = client.get(reverse("sessions_app:support_lookup"), headers=HX)
    assert htmx["HX-Redirect"] == reverse("mfa_index")
    # The enrolment pages and sign-out stay open.
    assert client.get(reverse("mfa_index")).status_code == HTTPStatus.OK


def test_mfa_required_lets_an_enrolled_user_through(settings, mfa_user) -> None:
    settings.MFA_REQUIRED = True
    user, _secret = mfa_user
    response = client_for(user).get(reverse("sessions_app:support_lookup"))
    assert response.status_code == HTTPStatus.OK


def test_mfa_required_defaults_follow_django_secure() -> None:
    from django.conf import settings

    # The suite runs without DJANGO_SECURE: MFA and step-up are off by default here.
    assert settings.SECURE is False and settings.MFA_REQUIRED is False
    assert settings.STEP_UP_REQUIRED is False and settings.STEP_UP_SECONDS == 900


# --- SSO_ONLY -----------------------------------------------------------------------------------


def test_sso_only_turns_password_sign_in_off_but_for_break_glass(settings, support_user) -> None:
    settings.SSO_ONLY = True
    settings.SSO_BREAK_GLASS_USERS = ["glass"]
    client, refused = sign_in(support_user.username)
    assert refused.status_code == HTTPStatus.FORBIDDEN
    assert b"Password sign-in is off" in refused.content
    assert "_auth_user_id" not in client.session
    assert _events("auth.login_failed")[-1].details["method"] == "password"
    User.objects.create_superuser("glass", password="glass-pw-123456")
    User.objects.create_superuser("other_root", password="glass-pw-123456")
    glass, ok = sign_in("glass", "glass-pw-123456")
    assert ok.status_code == HTTPStatus.FOUND and "_auth_user_id" in glass.session
    _, not_listed = sign_in("other_root", "glass-pw-123456")
    assert not_listed.status_code == HTTPStatus.FORBIDDEN


def test_a_superuser_removes_a_lost_authenticator_in_the_admin_audited(mfa_user) -> None:
    from allauth.mfa.models import Authenticator

    user, _secret = mfa_user
    root = User.objects.create_superuser("root_reset", password="root-reset-pw-123")
    totp = Authenticator.objects.get(user=user, type="totp")
    client = client_for(root, REMOTE_ADDR=IP)
    url = reverse("admin:mfa_authenticator_delete", args=[totp.pk])
    assert client.post(url, {"post": "yes"}).status_code == HTTPStatus.FOUND
    assert not Authenticator.objects.filter(pk=totp.pk).exists()
    [removed] = _events("auth.mfa_removed")
    assert removed.actor == root and removed.ip_address == IP
    assert removed.details == {"type": "totp", "user": user.username, "by_admin": True}
