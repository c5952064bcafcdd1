"""Single sign-on settings: LDAP / Active Directory (django-auth-ldap) and OpenID Connect
(mozilla-django-oidc), read from the environment like the rest (config/settings.py imports them).

The library settings keep the libraries' own names (AUTH_LDAP_*, OIDC_RP_*, OIDC_OP_*), so their
documentation applies as written; what Rollcall adds (roles, student numbers, local passwords) is
ROLLCALL_*. Both are off until their server is named: AUTH_LDAP_SERVER_URI, OIDC_OP_AUTHORIZATION_ENDPOINT.
"""

from __future__ import annotations

from django.core.exceptions import ImproperlyConfigured

from config.env import env_bool, env_choice, env_int, env_list, env_str

# Passwords kept in Rollcall: true for everyone, false for superusers only (the first admin, created by
# `manage.py ensure_admin`, who must still get in when the directory or the provider is down).
ROLLCALL_LOCAL_PASSWORD_SIGNIN = env_bool("ROLLCALL_LOCAL_PASSWORD_SIGNIN", True)

# --- LDAP / Active Directory -------------------------------------------------------------------
AUTH_LDAP_SERVER_URI = env_str("AUTH_LDAP_SERVER_URI", "")
ROLLCALL_LDAP_ENABLED = bool(AUTH_LDAP_SERVER_URI)
AUTH_LDAP_BIND_DN = env_str("AUTH_LDAP_BIND_DN", "")
AUTH_LDAP_BIND_PASSWORD = env_str("AUTH_LDAP_BIND_PASSWORD", "")
AUTH_LDAP_START_TLS = env_bool("AUTH_LDAP_START_TLS", False)
AUTH_LDAP_USER_SEARCH_BASE = env_str("AUTH_LDAP_USER_SEARCH_BASE", "")
# OpenLDAP: (uid=%(user)s); Active Directory: (sAMAccountName=%(user)s).
AUTH_LDAP_USER_SEARCH_FILTER = env_str("AUTH_LDAP_USER_SEARCH_FILTER", "(uid=%(user)s)")
AUTH_LDAP_GROUP_SEARCH_BASE = env_str("AUTH_LDAP_GROUP_SEARCH_BASE", "")
_GROUP_TYPES = {
    "groupOfNames": "GroupOfNamesType",
    "nestedGroupOfNames": "NestedGroupOfNamesType",
    "groupOfUniqueNames": "GroupOfUniqueNamesType",
    "posixGroup": "PosixGroupType",
    "activeDirectory": "NestedActiveDirectoryGroupType",
}
ROLLCALL_LDAP_GROUP_TYPE = env_choice("ROLLCALL_LDAP_GROUP_TYPE", "groupOfNames", list(_GROUP_TYPES))
# One group DN per role (a DN holds commas, so never a list): admin wins over lecturer over student.
# With the student group empty, every directory account in neither other group is a student; with it
# set, an account in none of the three is refused.
ROLLCALL_LDAP_ADMIN_GROUP = env_str("ROLLCALL_LDAP_ADMIN_GROUP", "")
ROLLCALL_LDAP_LECTURER_GROUP = env_str("ROLLCALL_LDAP_LECTURER_GROUP", "")
ROLLCALL_LDAP_STUDENT_GROUP = env_str("ROLLCALL_LDAP_STUDENT_GROUP", "")
ROLLCALL_LDAP_FIRST_NAME_ATTR = env_str("ROLLCALL_LDAP_FIRST_NAME_ATTR", "givenName")
ROLLCALL_LDAP_LAST_NAME_ATTR = env_str("ROLLCALL_LDAP_LAST_NAME_ATTR", "sn")
ROLLCALL_LDAP_EMAIL_ATTR = env_str("ROLLCALL_LDAP_EMAIL_ATTR", "mail")
# Empty: the directory holds no student numbers and accounts are matched by username and email only.
ROLLCALL_LDAP_STUDENT_NUMBER_ATTR = env_str("ROLLCALL_LDAP_STUDENT_NUMBER_ATTR", "")
AUTH_LDAP_TIMEOUT = env_int("AUTH_LDAP_TIMEOUT", 5, minimum=1)
# The account is written by attendance/sso (matching, roles), not by django-auth-ldap's mapping.
AUTH_LDAP_USER_ATTR_MAP: dict[str, str] = {}
AUTH_LDAP_ALWAYS_UPDATE_USER = False
AUTH_LDAP_CACHE_TIMEOUT = 0

if ROLLCALL_LDAP_ENABLED:
    import django_auth_ldap.config as _ldap_config
    import ldap as _ldap

    if not AUTH_LDAP_USER_SEARCH_BASE:
        raise ImproperlyConfigured("AUTH_LDAP_USER_SEARCH_BASE must be set when AUTH_LDAP_SERVER_URI is")
    AUTH_LDAP_USER_SEARCH = _ldap_config.LDAPSearch(
        AUTH_LDAP_USER_SEARCH_BASE, _ldap.SCOPE_SUBTREE, AUTH_LDAP_USER_SEARCH_FILTER
    )
    if AUTH_LDAP_GROUP_SEARCH_BASE:
        AUTH_LDAP_GROUP_SEARCH = _ldap_config.LDAPSearch(AUTH_LDAP_GROUP_SEARCH_BASE, _ldap.SCOPE_SUBTREE)
        AUTH_LDAP_GROUP_TYPE = getattr(_ldap_config, _GROUP_TYPES[ROLLCALL_LDAP_GROUP_TYPE])()
    elif ROLLCALL_LDAP_ADMIN_GROUP or ROLLCALL_LDAP_LECTURER_GROUP or ROLLCALL_LDAP_STUDENT_GROUP:
        raise ImproperlyConfigured("AUTH_LDAP_GROUP_SEARCH_BASE must be set for the ROLLCALL_LDAP_*_GROUP roles")
    # Active Directory answers searches at the domain root with referrals the client cannot follow.
    AUTH_LDAP_CONNECTION_OPTIONS = {
        _ldap.OPT_REFERRALS: 0,
        _ldap.OPT_NETWORK_TIMEOUT: AUTH_LDAP_TIMEOUT,
        _ldap.OPT_TIMEOUT: AUTH_LDAP_TIMEOUT,
    }

# --- OpenID Connect (Microsoft Entra ID, Google, Keycloak, ...) ----------------------------------
OIDC_OP_AUTHORIZATION_ENDPOINT = env_str("OIDC_OP_AUTHORIZATION_ENDPOINT", "")
ROLLCALL_OIDC_ENABLED = bool(OIDC_OP_AUTHORIZATION_ENDPOINT)
OIDC_OP_TOKEN_ENDPOINT = env_str("OIDC_OP_TOKEN_ENDPOINT", "")
OIDC_OP_USER_ENDPOINT = env_str("OIDC_OP_USER_ENDPOINT", "")
OIDC_OP_JWKS_ENDPOINT = env_str("OIDC_OP_JWKS_ENDPOINT", "")
OIDC_RP_CLIENT_ID = env_str("OIDC_RP_CLIENT_ID", "")
OIDC_RP_CLIENT_SECRET = env_str("OIDC_RP_CLIENT_SECRET", "")
OIDC_RP_SIGN_ALGO = env_choice("OIDC_RP_SIGN_ALGO", "RS256", ["RS256", "ES256", "HS256"])
OIDC_RP_SCOPES = env_str("OIDC_RP_SCOPES", "openid email profile")
OIDC_USE_PKCE = env_bool("OIDC_USE_PKCE", True)
OIDC_TIMEOUT = env_int("OIDC_TIMEOUT", 10, minimum=1)
# The button on the sign-in page says "Sign in with <this>".
ROLLCALL_OIDC_PROVIDER_NAME = env_str("ROLLCALL_OIDC_PROVIDER_NAME", "your university account")
# The claim that carries roles or groups (ID token or userinfo): Entra app roles "roles", Keycloak
# "groups" or "roles" (with a mapper), Google none. Its values per role, comma-separated; the same
# precedence and "student when empty" rule as the LDAP groups.
ROLLCALL_OIDC_ROLE_CLAIM = env_str("ROLLCALL_OIDC_ROLE_CLAIM", "")
ROLLCALL_OIDC_ADMIN_ROLES = env_list("ROLLCALL_OIDC_ADMIN_ROLES", [])
ROLLCALL_OIDC_LECTURER_ROLES = env_list("ROLLCALL_OIDC_LECTURER_ROLES", [])
ROLLCALL_OIDC_STUDENT_ROLES = env_list("ROLLCALL_OIDC_STUDENT_ROLES", [])
ROLLCALL_OIDC_STUDENT_NUMBER_CLAIM = env_str("ROLLCALL_OIDC_STUDENT_NUMBER_CLAIM", "")
# The email matches an existing account only when the provider says email_verified=true. A provider
# that sends no email_verified claim but only gives out addresses it owns (Microsoft Entra ID with its
# own tenant's addresses) may be trusted with this; an explicit email_verified=false never is.
ROLLCALL_OIDC_TRUST_EMAIL = env_bool("ROLLCALL_OIDC_TRUST_EMAIL", False)
# A failed or refused OIDC sign-in comes back to the sign-in page, which says so.
LOGIN_REDIRECT_URL_FAILURE = "/login/?sso=failed"

if ROLLCALL_OIDC_ENABLED:
    _missing = [
        name
        for name in ("OIDC_OP_TOKEN_ENDPOINT", "OIDC_OP_USER_ENDPOINT", "OIDC_RP_CLIENT_ID", "OIDC_RP_CLIENT_SECRET")
        if not globals()[name]
    ]
    if OIDC_RP_SIGN_ALGO != "HS256" and not OIDC_OP_JWKS_ENDPOINT:
        _missing.append("OIDC_OP_JWKS_ENDPOINT")
    if _missing:
        raise ImproperlyConfigured(f"OpenID Connect needs {', '.join(_missing)} beside OIDC_OP_AUTHORIZATION_ENDPOINT")

# Tried in this order; each backend's own rules (attendance/sso/backends.py) decide who gets in.
AUTHENTICATION_BACKENDS = [
    *(["attendance.sso.backends.DirectoryBackend"] if ROLLCALL_LDAP_ENABLED else []),
    *(["attendance.sso.backends.OpenIDConnectBackend"] if ROLLCALL_OIDC_ENABLED else []),
    "attendance.sso.backends.LocalPasswordBackend",
]
