"""Every page and endpoint of the app, one URLconf per feature (each feature's urls.py)."""

from django.urls import include, path

urlpatterns = [
    path("", include("attendance.platform.urls")),
    path("", include("attendance.sso.urls")),
    path("", include("attendance.courses.urls")),
    path("", include("attendance.reports.urls")),
    path("", include("attendance.privacy.urls")),
    path("", include("attendance.sessions.urls")),
    path("", include("attendance.checkin.urls")),
    path("", include("attendance.enrolment.urls")),
    path("", include("attendance.grades.urls")),
    path("", include("attendance.warnings.urls")),
    path("", include("attendance.campus.urls")),
]
