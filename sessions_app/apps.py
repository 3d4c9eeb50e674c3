from __future__ import annotations

from django.apps import AppConfig


class SessionsAppConfig(AppConfig):
    name = "sessions_app"
    verbose_name = "Tool Router sessions"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        # Imported for what they register: the admin, the signal receivers, the proxy checks.
        from sessions_app import admin, request_context, signals  # noqa: F401
        from sessions_app.chain import checks  # noqa: F401  (registers the audit key checks)

        signals.connect()

        from sessions_app.signin import audit as signin_audit
        from sessions_app.signin import sso  # noqa: F401  (registers the SSO_ROLE_MAP check)

        signin_audit.connect()

        from sessions_app import principals

        principals.connect()

        from django.db.models.signals import post_migrate

        post_migrate.connect(signals.create_cache_table, sender=self, dispatch_uid="cache_table")

        from django.contrib.auth.signals import user_logged_in

        from sessions_app.middleware import stamp_session_start

        user_logged_in.connect(stamp_session_start, dispatch_uid="stamp_session_start")

        from sessions_app.admin.safety import guard_admins

        guard_admins()
