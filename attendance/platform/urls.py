"""Sign-in, health and API tokens."""

from django.contrib.auth import views as auth_views
from django.urls import path

from attendance.platform import tokens, views

urlpatterns = [
    path("healthz", views.healthz, name="healthz"),
    path("login/", views.LoginView.as_view(), name="login"),
    path("logout/", auth_views.LogoutView.as_view(), name="logout"),
    path("api/auth/token/", tokens.TokenApi.as_view(), name="api-token"),
    path("api/users/<int:pk>/token/", tokens.UserTokenRevokeApi.as_view(), name="api-user-token"),
]
