"""Pages and API endpoints for sessions and live check-in (included from attendance/urls.py)."""

from django.urls import path

from attendance import apis_checkin, views_checkin

urlpatterns = [
    path("courses/<int:pk>/", views_checkin.course_detail, name="course-detail"),
    path("courses/<int:pk>/sessions/start/", views_checkin.course_session_start, name="course-session-start"),
    path("sessions/<int:pk>/open/", views_checkin.session_open_view, name="session-open"),
    path("sessions/<int:pk>/close/", views_checkin.session_close_view, name="session-close"),
    path("sessions/<int:pk>/check-in/", views_checkin.session_checkin, name="session-checkin"),
    path("sessions/<int:pk>/kiosk/", views_checkin.session_kiosk_create, name="session-kiosk"),
    path("sessions/<int:pk>/kiosk/revoke/", views_checkin.session_kiosk_revoke, name="session-kiosk-revoke"),
    path("kiosk/<str:token>/", views_checkin.kiosk, name="kiosk"),
    # API
    path("api/courses/<int:pk>/sessions/", apis_checkin.CourseSessionStartApi.as_view(),
         name="api-course-session-start"),
    path("api/sessions/<int:pk>/open/", apis_checkin.SessionOpenApi.as_view(), name="api-session-open"),
    path("api/sessions/<int:pk>/close/", apis_checkin.SessionCloseApi.as_view(), name="api-session-close"),
    path("api/sessions/<int:pk>/check-in/", apis_checkin.SessionCheckinApi.as_view(), name="api-session-checkin"),
    path("api/sessions/<int:pk>/state/", apis_checkin.SessionStateApi.as_view(), name="api-session-state"),
    path("api/sessions/<int:pk>/marks/", apis_checkin.SessionMarkApi.as_view(), name="api-session-marks"),
    path("api/sessions/<int:pk>/doubtful/<int:student_id>/", apis_checkin.SessionDoubtfulDismissApi.as_view(),
         name="api-session-doubtful-dismiss"),
]
