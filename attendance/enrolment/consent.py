"""The consent text a student agrees to before enrolling, and its version.

The text is one template (templates/enrolment/_consent_text.html), shown on the enrol page and the
privacy page; its version is a hash of that template's source, so any change to the text is a new
version without anyone remembering to bump a number. Each enrolment stores the version agreed to,
and a page opened on an older text cannot enrol: the student reads the new one and ticks again.
"""

from __future__ import annotations

import hashlib
from functools import cache

from django.template.loader import get_template

CONSENT_TEMPLATE = "enrolment/_consent_text.html"


@cache
def consent_version() -> str:
    source = get_template(CONSENT_TEMPLATE).template.source  # type: ignore[attr-defined]
    return hashlib.sha256(source.encode()).hexdigest()[:12]


def consent_outdated(version: str | None) -> bool:
    """Whether a consent given to `version` is not consent to today's text (None: given now)."""
    return version is not None and version != consent_version()
