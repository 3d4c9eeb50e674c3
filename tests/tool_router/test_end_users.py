"""The end-user import service on arbitrary input."""

from __future__ import annotations

from hypothesis import HealthCheck, given
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st

from sessions_app.models import EndUser
from sessions_app.tool_router import end_users


@given(content=st.one_of(st.binary(max_size=300), st.text(max_size=300).map(str.encode)))
@hypothesis_settings(
    max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
def test_the_csv_preview_never_crashes_and_never_writes(db: None, content: bytes) -> None:
    preview = end_users.end_user_import_preview(content=b"external_id,name,email\n" + content)
    assert preview.error or preview.valid or preview.rejected
    assert not EndUser.objects.exists()
