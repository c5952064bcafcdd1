"""Template helpers for the report pages: rates, distances, and links to pages that may not exist yet."""

from __future__ import annotations

from django import template
from django.urls import NoReverseMatch, reverse

register = template.Library()


@register.filter
def percent(rate: float | None, digits: int = 0) -> str:
    """0.8333 -> "83 %"; None (nothing to count yet) -> an en dash."""
    if rate is None:
        return "\u2013"
    return f"{rate * 100:.{int(digits)}f} %"


@register.filter
def distance(value: float | None) -> str:
    return "" if value is None else f"{value:.3f}"


@register.simple_tag
def optional_url(name: str, *args: object) -> str:
    """The URL of a named page, or "" when that part of the app is not installed."""
    try:
        return reverse(name, args=args)
    except NoReverseMatch:
        return ""


@register.simple_tag(takes_context=True)
def query_with(context: template.Context, **changes: object) -> str:
    """The current query string with some parameters replaced (pagination and sort links keep the filters)."""
    request = context.get("request")
    params = request.GET.copy() if request is not None else None
    if params is None:
        return ""
    for key, value in changes.items():
        if value in (None, ""):
            params.pop(key, None)
        else:
            params[key] = str(value)
    encoded = params.urlencode()
    return f"?{encoded}" if encoded else "?"
