"""Pages and API endpoints for face enrolment."""

from django.urls import path

from attendance.enrolment import api, views

urlpatterns = [
    path("enrol/", views.enrolment, name="enrolment"),
    path("students/<int:pk>/enrol/", views.student_enrol, name="student-enrol"),
    # API
    path("api/enrolments/", api.EnrolmentUploadApi.as_view(), name="api-enrolment-create"),
    path("api/enrolments/<int:pk>/", api.EnrolmentDetailApi.as_view(), name="api-enrolment-detail"),
]
