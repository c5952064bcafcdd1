"""The language a page is in, and the menu that changes it.

Django's LocaleMiddleware picks the language from the chooser's cookie, else the browser's
Accept-Language, else LANGUAGE_CODE. A signed-in person's saved choice (User.language) comes first:
the language they picked on the lecture-hall PC is the one on their phone, and the one their
warning emails are written in. Choosing a language signed in saves it; choosing "the browser's"
clears it.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Literal, cast

from django.conf import settings
from django.db import InterfaceError, OperationalError
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.utils import translation
from django.utils.http import url_has_allowed_host_and_scheme
from django.views.decorators.http import etag, require_POST
from django.views.i18n import JavaScriptCatalog

BROWSER = ""  # the menu's value for "follow the browser"
SAMESITE = cast(Literal["Lax", "Strict", "None"], settings.LANGUAGE_COOKIE_SAMESITE)


def supported(code: str) -> str | None:
    """`code` as one of settings.LANGUAGES, or None when the app has no such language."""
    try:
        return translation.get_supported_language_variant(code) if code else None
    except LookupError:
        return None


class UserLanguageMiddleware:
    """After AuthenticationMiddleware: a signed-in person's saved language overrides the browser's."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        try:
            user = getattr(request, "user", None)
            signed_in = user is not None and user.is_authenticated
            chosen = supported(getattr(user, "language", "") or "") if signed_in else None
        except (OperationalError, InterfaceError):
            # The session or the user cannot be read (the database is out of reach): the browser's language,
            # and the view meets the same error, which ServiceUnavailableMiddleware answers with a 503.
            chosen = None
        if chosen and chosen != translation.get_language():
            translation.activate(chosen)
            request.LANGUAGE_CODE = chosen
        return self.get_response(request)


@require_POST
def choose_language(request: HttpRequest) -> HttpResponse:
    """The language menu's form: save the choice (cookie; and the account when signed in), then go back."""
    nxt = request.POST.get("next") or request.headers.get("referer") or "/"
    if not url_has_allowed_host_and_scheme(nxt, allowed_hosts={request.get_host()}, require_https=request.is_secure()):
        nxt = "/"
    response = HttpResponseRedirect(nxt)
    wanted = request.POST.get("language", BROWSER)
    code = supported(wanted)
    user = request.user
    if wanted == BROWSER:
        response.delete_cookie(settings.LANGUAGE_COOKIE_NAME, samesite=SAMESITE)
    elif code is None:
        return response  # a language the app does not have: nothing changes
    else:
        response.set_cookie(
            settings.LANGUAGE_COOKIE_NAME, code, max_age=settings.LANGUAGE_COOKIE_AGE,
            secure=settings.LANGUAGE_COOKIE_SECURE, httponly=True, samesite=SAMESITE,
        )
    if user.is_authenticated and getattr(user, "language", None) != (code or ""):
        user.language = code or ""
        user.save(update_fields=["language"])
    return response


def language_menu(request: HttpRequest) -> dict[str, object]:
    """Context processor: whether the page's reader has chosen a language (saved or by cookie); the
    menu shows "the browser's language" selected when not."""
    user = getattr(request, "user", None)
    signed_in = user is not None and user.is_authenticated
    saved = bool(supported(getattr(user, "language", "") or "")) if signed_in else False
    return {"language_chosen": saved or bool(supported(request.COOKIES.get(settings.LANGUAGE_COOKIE_NAME, "")))}


def catalogue_etag(request: HttpRequest) -> str | None:
    """The /jsi18n/ answer's version: the page's language and when its catalogues were compiled. A page
    view revalidates it (304) instead of having it built again, and a language changed elsewhere (the
    account's, on another device) is a new version, never the old catalogue."""
    times = [mo.stat().st_mtime_ns for path in settings.LOCALE_PATHS
             for mo in Path(path).glob("*/LC_MESSAGES/djangojs.mo")]
    return f"{translation.get_language()}-{max(times, default=0)}"


javascript_catalog = etag(catalogue_etag)(JavaScriptCatalog.as_view())
