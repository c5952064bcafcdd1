"""Django authentication backends: local passwords, LDAP / Active Directory, OpenID Connect.

The sign-in page and the API token endpoint both call `django.contrib.auth.authenticate`, so a
password goes through the same backends and rules wherever it is typed (settings AUTHENTICATION_BACKENDS).
"""

from __future__ import annotations

import base64
import hashlib
import logging
from typing import Any

from django.conf import settings
from django.contrib.auth.backends import ModelBackend
from django.core.exceptions import SuspiciousOperation
from django_auth_ldap.backend import LDAPBackend, _LDAPUser
from mozilla_django_oidc.auth import OIDCAuthenticationBackend

from attendance.models import User
from attendance.sso.services import DirectoryPerson, RoleMap, SignInRefused, account_sign_in

logger = logging.getLogger(__name__)


class LocalPasswordBackend(ModelBackend):
    """Passwords kept in Rollcall. With ROLLCALL_LOCAL_PASSWORD_SIGNIN off, only superusers use them."""

    def user_can_authenticate(self, user: Any) -> bool:
        if not super().user_can_authenticate(user):
            return False
        return bool(settings.ROLLCALL_LOCAL_PASSWORD_SIGNIN or user.is_superuser)


def _mark_refused(request: Any) -> None:
    """Tell the sign-in page that the password was right but the account may not be used (the log says why)."""
    if request is not None:
        request.sign_in_refused = True


def _first(attrs: Any, name: str) -> str:
    if not name or not attrs:
        return ""
    values = attrs.get(name) or attrs.get(name.lower()) or []
    return str(values[0]).strip() if values else ""


def _active(user: Any) -> Any:
    """A deactivated account is signed out on its next request, like ModelBackend does."""
    return user if user is not None and user.is_active else None


def email_is_verified(claims: dict[str, Any]) -> bool:
    """Whether the provider vouches for the email: its email_verified claim says so, or the provider
    sends none (Microsoft Entra ID) and ROLLCALL_OIDC_TRUST_EMAIL says its addresses are its own."""
    verified = claims.get("email_verified")
    if verified in (True, "true"):
        return True
    return verified is None and settings.ROLLCALL_OIDC_TRUST_EMAIL


class DirectoryBackend(LDAPBackend):
    """django-auth-ldap checks the password and finds the groups; the account is Rollcall's own match."""

    def get_user(self, user_id: Any) -> Any:
        return _active(super().get_user(user_id))

    def get_or_build_user(self, username: str, ldap_user: _LDAPUser) -> tuple[User, bool]:
        roles = RoleMap.of(
            admin=[settings.ROLLCALL_LDAP_ADMIN_GROUP],
            lecturer=[settings.ROLLCALL_LDAP_LECTURER_GROUP],
            student=[settings.ROLLCALL_LDAP_STUDENT_GROUP],
        )
        attrs = ldap_user.attrs
        try:
            person = DirectoryPerson(
                source="LDAP",
                username=username.strip().lower(),
                email=_first(attrs, settings.ROLLCALL_LDAP_EMAIL_ATTR).lower(),
                student_number=_first(attrs, settings.ROLLCALL_LDAP_STUDENT_NUMBER_ATTR),
                first_name=_first(attrs, settings.ROLLCALL_LDAP_FIRST_NAME_ATTR),
                last_name=_first(attrs, settings.ROLLCALL_LDAP_LAST_NAME_ATTR),
                role=roles.role_for(ldap_user.group_dns if roles.configured else ()),
            )
            user = account_sign_in(person=person)
        except SignInRefused as exc:
            logger.warning("LDAP sign-in of %s refused: %s", username, exc)
            _mark_refused(ldap_user._request)
            raise ldap_user.AuthenticationFailed(str(exc)) from None
        # Saved already: "not built" keeps django-auth-ldap from creating or repopulating it.
        return user, False


class OpenIDConnectBackend(OIDCAuthenticationBackend):
    """mozilla-django-oidc runs the code flow and checks the ID token; the account is Rollcall's own match."""

    def get_userinfo(self, access_token: str, id_token: str, payload: dict[str, Any]) -> dict[str, Any]:
        # Entra puts app roles in the ID token only, Keycloak may put groups in either: read both,
        # the verified ID token first and the userinfo endpoint's answer over it.
        return {**payload, **super().get_userinfo(access_token, id_token, payload)}

    def get_user(self, user_id: Any) -> Any:
        return _active(super().get_user(user_id))

    def verify_claims(self, claims: dict[str, Any]) -> bool:
        return bool(claims.get("sub"))

    def get_or_create_user(self, access_token: str, id_token: str, payload: dict[str, Any]) -> User | None:
        claims = self.get_userinfo(access_token, id_token, payload)
        if not self.verify_claims(claims):
            raise SuspiciousOperation("the provider sent no subject (sub) claim")
        email = str(claims.get("email") or "").strip().lower()
        if email and not email_is_verified(claims):
            # A provider that lets people type any address must not let them claim someone's account.
            logger.warning("OpenID Connect email %s is not verified: not used to match an account", email)
            email = ""
        raw_roles = claims.get(settings.ROLLCALL_OIDC_ROLE_CLAIM, []) if settings.ROLLCALL_OIDC_ROLE_CLAIM else []
        memberships = [raw_roles] if isinstance(raw_roles, str) else [str(r) for r in raw_roles or []]
        roles = RoleMap.of(
            admin=settings.ROLLCALL_OIDC_ADMIN_ROLES,
            lecturer=settings.ROLLCALL_OIDC_LECTURER_ROLES,
            student=settings.ROLLCALL_OIDC_STUDENT_ROLES,
        )
        number_claim = settings.ROLLCALL_OIDC_STUDENT_NUMBER_CLAIM
        try:
            person = DirectoryPerson(
                source="OpenID Connect",
                username=self.username_for(str(claims["sub"])),
                email=email,
                student_number=str(claims.get(number_claim) or "").strip() if number_claim else "",
                first_name=str(claims.get("given_name") or "").strip(),
                last_name=str(claims.get("family_name") or "").strip(),
                role=roles.role_for(memberships),
                issuer=str(payload.get("iss") or settings.OIDC_OP_TOKEN_ENDPOINT),
                subject=str(claims["sub"]),
            )
            return account_sign_in(person=person)
        except SignInRefused as exc:
            # mozilla-django-oidc turns this into a failed sign-in (the sign-in page says so).
            raise SuspiciousOperation(f"OpenID Connect sign-in refused: {exc}") from None

    @staticmethod
    def username_for(subject: str) -> str:
        """A stable username from the provider's subject: found again on the next sign-in, whatever the email."""
        digest = hashlib.sha224(subject.encode()).digest()
        return "oidc-" + base64.b32encode(digest).decode().rstrip("=").lower()[:24]
