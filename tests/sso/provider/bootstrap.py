"""Migrate the provider's database and load its people and Rollcall's client, from JSON on stdin.

{"client": {"id", "secret", "redirect_uri"}, "people": [{"username", "password", "email", "first_name",
"last_name", "groups": [...], "claims": {...}}]}; the extra claims go to $PROVIDER_EXTRA_CLAIMS.
"""

from __future__ import annotations

import json
import os
import sys

import django

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "tests.sso.provider.settings")
django.setup()

from pathlib import Path  # noqa: E402

from django.contrib.auth.models import Group, User  # noqa: E402
from django.core.management import call_command  # noqa: E402
from oauth2_provider.models import Application  # noqa: E402

spec = json.load(sys.stdin)
call_command("migrate", verbosity=0, interactive=False)
claims = {person["username"]: person.pop("claims", {}) for person in spec["people"]}
Path(os.environ["PROVIDER_EXTRA_CLAIMS"]).write_text(json.dumps(claims))
for person in spec["people"]:
    groups = person.pop("groups", [])
    user = User.objects.create_user(**person)
    user.groups.set([Group.objects.get_or_create(name=name)[0] for name in groups])
client = spec["client"]
Application.objects.create(
    name="Rollcall",
    client_id=client["id"],
    client_secret=client["secret"],  # hashed by save()
    client_type=Application.CLIENT_CONFIDENTIAL,
    authorization_grant_type=Application.GRANT_AUTHORIZATION_CODE,
    redirect_uris=client["redirect_uri"],
    algorithm=Application.RS256_ALGORITHM,
    skip_authorization=True,  # no consent page: the university's own app
)
print("provider ready")
