"""The SSO rules on their own: domains, the role map and its start-up check, provider MFA."""

from __future__ import annotations

from sessions_app.signin import sso


def test_domains_are_matched_whole_and_case_blind(settings) -> None:
    settings.SSO_ALLOWED_DOMAINS = ["example.com"]
    assert sso.domain_allowed("Sam@Example.COM")
    assert not sso.domain_allowed("sam@sub.example.com")
    assert not sso.domain_allowed("sam@example.com.evil.test")
    assert not sso.domain_allowed("example.com")


def test_only_mapped_groups_give_roles_and_only_console_roles(settings) -> None:
    settings.SSO_ROLE_MAP = {"a": "Support", "b": "Auditor", "c": "superuser"}
    assert sso.roles_for(["a", "b", "c", "d", "a"]) == ["Auditor", "Support"]
    assert sso.groups_of({"groups": "a"}) == ["a"] and sso.groups_of({"groups": 7}) == []


def test_an_unknown_role_in_the_map_stops_the_start(settings) -> None:
    settings.SSO_ROLE_MAP = {"root": "Superuser"}
    [error] = sso.check_role_map()
    assert error.id == "sessions_app.E010" and "Superuser" in error.msg
    settings.SSO_ROLE_MAP = {"x": "Support"}
    assert sso.check_role_map() == []


def test_provider_mfa_needs_trust_and_a_listed_amr_or_acr(settings) -> None:
    settings.SSO_TRUST_PROVIDER_MFA = False
    assert not sso.provider_did_mfa({"amr": ["mfa"]})
    settings.SSO_TRUST_PROVIDER_MFA = True
    settings.SSO_MFA_ACR_VALUES = ["urn:example:mfa"]
    assert sso.provider_did_mfa({"amr": ["pwd", "hwk"]})
    assert sso.provider_did_mfa({"acr": "urn:example:mfa"})
    assert not sso.provider_did_mfa({"amr": ["pwd"], "acr": "urn:example:pwd"})
