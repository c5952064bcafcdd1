"""The OpenID Connect redirect flow's two pages, answering 404 while OpenID Connect is not configured."""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.http import Http404, HttpRequest, HttpResponseBase
from django.utils.translation import gettext as _
from mozilla_django_oidc.views import OIDCAuthenticationCallbackView, OIDCAuthenticationRequestView


class _OnlyWhenConfigured:
    def dispatch(self, request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponseBase:
        if not settings.ROLLCALL_OIDC_ENABLED:
            raise Http404(_("Single sign-on with OpenID Connect is not set up on this server."))
        return super().dispatch(request, *args, **kwargs)  # type: ignore[misc]


class OIDCStartView(_OnlyWhenConfigured, OIDCAuthenticationRequestView):
    """Sends the browser to the provider's sign-in page (with state, nonce and a PKCE challenge)."""


class OIDCCallbackView(_OnlyWhenConfigured, OIDCAuthenticationCallbackView):
    """The provider sends the browser back here with a code; the backend turns it into an account."""
