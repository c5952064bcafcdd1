"""Sign-in, health, API tokens and the language menu."""

from django.contrib.auth import views as auth_views
from django.urls import path

from attendance.platform import language, tokens, views

urlpatterns = [
    path("healthz", views.healthz, name="healthz"),
    path("login/", views.LoginView.as_view(), name="login"),
    path("logout/", auth_views.LogoutView.as_view(), name="logout"),
    path("language/", language.choose_language, name="language"),
    # gettext() for static/js: the djangojs catalogue of the page's language.
    path("jsi18n/", language.javascript_catalog, name="javascript-catalog"),
    path("api/auth/token/", tokens.TokenApi.as_view(), name="api-token"),
    path("api/users/<int:pk>/token/", tokens.UserTokenRevokeApi.as_view(), name="api-user-token"),
]
