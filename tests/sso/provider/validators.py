"""The claims the provider sends: names, a verified email, a student number and the person's groups as roles."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from oauth2_provider.oauth2_validators import OAuth2Validator


class ClaimsValidator(OAuth2Validator):
    oidc_claim_scope = None  # every claim below, whatever the scopes (as Entra sends app roles)

    def get_additional_claims(self, request: Any) -> dict[str, Any]:
        user = request.user
        claims = {
            "email": user.email,
            "email_verified": True,
            "given_name": user.first_name,
            "family_name": user.last_name,
            "preferred_username": user.username,
            "roles": sorted(user.groups.values_list("name", flat=True)),
            # Claims a real provider maps from its directory (a student number), per username.
            **json.loads(Path(os.environ["PROVIDER_EXTRA_CLAIMS"]).read_text()).get(user.username, {}),
        }
        # An extra claim of null leaves the claim out (as Entra sends no email_verified).
        return {name: value for name, value in claims.items() if value is not None}
