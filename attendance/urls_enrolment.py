"""Pages and API endpoints for face enrolment (included from attendance/urls.py)."""

from django.urls import path

from attendance import apis_enrolment, views_enrolment

urlpatterns = [
    path("enrol/", views_enrolment.enrolment, name="enrolment"),
    path("students/<int:pk>/enrol/", views_enrolment.student_enrol, name="student-enrol"),
    # API
    path("api/enrolments/", apis_enrolment.EnrolmentUploadApi.as_view(), name="api-enrolment-create"),
    path("api/enrolments/<int:pk>/", apis_enrolment.EnrolmentDetailApi.as_view(), name="api-enrolment-detail"),
]
