from tests.signin.oidc_provider import oidc_provider  # noqa: F401  (the SSO tests' fixture)
