"""The consent text a student agrees to before enrolling, and its version.

The text is one template (templates/enrolment/_consent_text.html), shown on the enrol page and the
privacy page. Its version is a hash of what it says: the template rendered in every language of
the site (settings.LANGUAGES), for each of its variants (self-service or by an admin, videos kept
or not), with the numbers and links as placeholders: its words, tags stripped and whitespace
normalised. So any change to the words, in English or in a translation, is a new version without
anyone remembering to bump a number, while marking the template for translation, reindenting it
or changing its markup is not. Each enrolment
stores the version agreed to, and a page opened on an older text cannot enrol: the student reads
the new one and ticks again.
"""

from __future__ import annotations

import hashlib
import itertools
import re
from functools import cache

from django.conf import settings
from django.template.loader import get_template
from django.utils import translation
from django.utils.html import strip_tags

CONSENT_TEMPLATE = "enrolment/_consent_text.html"

SAME_TEXT: dict[str, str] = {
    # Versions that were a hash of the template's source, whose words are today's: consent given to
    # them is consent to this text (checked when the version's definition changed).
    "0aa19237db14": "the English text of 2026-12-02, unchanged when the template was marked for translation",
}


@cache
def consent_version() -> str:
    template = get_template(CONSENT_TEMPLATE)
    placeholders = {"notice_days": "{notice_days}", "notice_url": "{notice_url}", "retention_days": "{retention_days}"}
    digest = hashlib.sha256()
    for (code, _), self_service, keeps_videos in itertools.product(settings.LANGUAGES, (True, False), (True, False)):
        with translation.override(code):
            text = template.render({**placeholders, "self_service": self_service, "keeps_videos": keeps_videos})
        words = re.sub(r"\s+", " ", strip_tags(text)).strip()
        digest.update(f"{code}\0{self_service}\0{keeps_videos}\0{words}\0".encode())
    return digest.hexdigest()[:12]


def consent_outdated(version: str | None) -> bool:
    """Whether a consent given to `version` is not consent to today's text (None: given now)."""
    return version is not None and version != consent_version() and version not in SAME_TEXT
