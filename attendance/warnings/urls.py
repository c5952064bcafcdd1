"""A student's attendance warnings."""

from django.urls import path

from attendance.warnings import views

urlpatterns = [
    path("me/warnings/", views.my_warnings, name="my-warnings"),
]
