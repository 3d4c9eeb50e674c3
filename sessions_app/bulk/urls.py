from __future__ import annotations

from django.urls import path

from sessions_app.bulk import views as bulk_views

app_name = "bulk"
urlpatterns = [
    path("", bulk_views.bulk_job_list, name="job_list"),
    path("<uuid:public_id>/", bulk_views.bulk_job_detail, name="job_detail"),
    path("<uuid:public_id>/progress/", bulk_views.bulk_job_progress, name="job_progress"),
    path("<uuid:public_id>/failures.csv", bulk_views.bulk_job_failures_csv, name="job_failures"),
    path("<uuid:public_id>/cancel/", bulk_views.bulk_job_cancel, name="job_cancel"),
    path("<uuid:public_id>/retry/", bulk_views.bulk_job_retry, name="job_retry"),
]
