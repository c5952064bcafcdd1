"""Pages and API endpoints for a course's sessions: start, open, close, kiosk links."""

from django.urls import path

from attendance.sessions import api, views

urlpatterns = [
    path("courses/<int:pk>/", views.course_detail, name="course-detail"),
    path("courses/<int:pk>/sessions/start/", views.course_session_start, name="course-session-start"),
    path("sessions/<int:pk>/open/", views.session_open_view, name="session-open"),
    path("sessions/<int:pk>/close/", views.session_close_view, name="session-close"),
    path("sessions/<int:pk>/kiosk/", views.session_kiosk_create, name="session-kiosk"),
    path("sessions/<int:pk>/kiosk/revoke/", views.session_kiosk_revoke, name="session-kiosk-revoke"),
    # API
    path("api/courses/<int:pk>/sessions/", api.CourseSessionStartApi.as_view(), name="api-course-session-start"),
    path("api/sessions/<int:pk>/open/", api.SessionOpenApi.as_view(), name="api-session-open"),
    path("api/sessions/<int:pk>/close/", api.SessionCloseApi.as_view(), name="api-session-close"),
]
