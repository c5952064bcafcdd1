"""Pages and API endpoints for live check-in: the check-in and kiosk pages, snapshots, the live list."""

from django.urls import path

from attendance.checkin import api, views

urlpatterns = [
    path("sessions/<int:pk>/check-in/", views.session_checkin, name="session-checkin"),
    path("kiosk/", views.kiosk_page, name="kiosk-page"),
    path("kiosk/<str:token>/", views.kiosk, name="kiosk"),
    # API
    path("api/sessions/<int:pk>/check-in/", api.SessionCheckinApi.as_view(), name="api-session-checkin"),
    path("api/sessions/<int:pk>/state/", api.SessionStateApi.as_view(), name="api-session-state"),
    path("api/sessions/<int:pk>/marks/", api.SessionMarkApi.as_view(), name="api-session-marks"),
    path("api/sessions/<int:pk>/doubtful/<int:student_id>/", api.SessionDoubtfulDismissApi.as_view(),
         name="api-session-doubtful-dismiss"),
]
