"""OpenID Connect sign-in: the redirect to the provider and its way back."""

from django.urls import path

from attendance.sso import views

urlpatterns = [
    path("oidc/authenticate/", views.OIDCStartView.as_view(), name="oidc_authentication_init"),
    path("oidc/callback/", views.OIDCCallbackView.as_view(), name="oidc_authentication_callback"),
]
