"""The consent text a student agrees to before enrolling, and its version.

The text is one template (templates/enrolment/_consent_text.html), shown on the enrol page and the
privacy page, and the consent checkbox's label (templates/enrolment/_consent_label.html). Its
version is a hash of what they say as this site shows them: both templates rendered in every
language of the site (settings.LANGUAGES), in both voices (the student's own, an admin's on their
behalf), with the site's variant (videos kept or not, check-in pictures kept or not) and numbers
(the retention periods): their words, tags stripped and whitespace normalised. So turning on kept
pictures, or a longer retention, is a new version too: a student who consented before read
something else. So any change to the words, in English or in a translation, is a new version without
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
CONSENT_LABEL_TEMPLATE = "enrolment/_consent_label.html"

SAME_TEXT: dict[str, str] = {
    # Earlier versions whose words are what a student is shown today as long as check-in pictures
    # are not kept (ROLLCALL_STORE_SNAPSHOTS off): consent given to them is consent to this text
    # there. With pictures kept, the text says more than they said, so they are outdated.
    "0aa19237db14": "the English text of 2026-12-02, unchanged when the template was marked for translation",
    "806732eb1d6e": "the text of 2026-12-06, before the label was hashed and the check-in pictures variant added",
}


def consent_version() -> str:
    """The version of the consent text as this site shows it now (its settings pick the variant
    and the numbers)."""
    return _version(
        keeps_videos=bool(settings.ROLLCALL_KEEP_ENROLMENT_VIDEOS),
        stores_snapshots=bool(settings.ROLLCALL_STORE_SNAPSHOTS),
        retention_days=int(settings.ROLLCALL_BIOMETRIC_RETENTION_DAYS),
        notice_days=int(settings.ROLLCALL_BIOMETRIC_NOTICE_DAYS),
        snapshot_days=int(settings.ROLLCALL_SNAPSHOT_RETENTION_DAYS),
    )


def clear_cache() -> None:
    """Read the templates again (tests that change them)."""
    _version.cache_clear()


@cache
def _version(*, keeps_videos: bool, stores_snapshots: bool, retention_days: int, notice_days: int,
             snapshot_days: int) -> str:
    templates = [get_template(CONSENT_TEMPLATE), get_template(CONSENT_LABEL_TEMPLATE)]
    context = {"keeps_videos": keeps_videos, "stores_snapshots": stores_snapshots, "retention_days": retention_days,
               "notice_days": notice_days, "snapshot_days": snapshot_days, "notice_url": "{notice_url}"}
    digest = hashlib.sha256()
    for (code, _), self_service in itertools.product(settings.LANGUAGES, (True, False)):
        with translation.override(code):
            text = " ".join(template.render({**context, "self_service": self_service}) for template in templates)
        words = re.sub(r"\s+", " ", strip_tags(text)).strip()
        digest.update(f"{code}\0{self_service}\0{words}\0".encode())
    return digest.hexdigest()[:12]


def consent_outdated(version: str | None) -> bool:
    """Whether a consent given to `version` is not consent to today's text (None: given now)."""
    if version is None or version == consent_version():
        return False
    return version not in SAME_TEXT or bool(settings.ROLLCALL_STORE_SNAPSHOTS)
