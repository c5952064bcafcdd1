from django.contrib.auth import views as auth_views
from django.urls import include, path

from attendance import views

urlpatterns = [
    path("", views.home, name="home"),
    path("healthz", views.healthz, name="healthz"),
    path("login/", views.LoginView.as_view(), name="login"),
    path("logout/", auth_views.LogoutView.as_view(), name="logout"),
    path("", include("attendance.urls_reports")),
    path("", include("attendance.urls_checkin")),
    path("", include("attendance.urls_enrolment")),
]
