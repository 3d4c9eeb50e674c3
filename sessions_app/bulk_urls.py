from __future__ import annotations

app_name = "bulk"
urlpatterns: list = []
