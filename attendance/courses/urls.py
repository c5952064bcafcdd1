"""The home page: each role's courses."""

from django.urls import path

from attendance.courses import views

urlpatterns = [
    path("", views.home, name="home"),
]
