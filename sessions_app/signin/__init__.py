"""Staff sign-in on django-allauth: the adapters, the MFA enrolment rule, step-up before secrets,
the SSO role mapping and the audit of every step (README "Sign-in", docs/security.md)."""
