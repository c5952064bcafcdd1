"""Which account a directory or provider sign-in lands on (attendance/sso/services), and who stays out."""

from __future__ import annotations

import pytest

from attendance.models import SsoIdentity, User
from attendance.sso.backends import DirectoryBackend, OpenIDConnectBackend
from attendance.sso.services import DirectoryPerson, SignInRefused, account_sign_in

ISSUER = "https://login.uni.example"


def oidc(subject: str, **fields: str) -> DirectoryPerson:
    return DirectoryPerson(source="OpenID Connect", username=OpenIDConnectBackend.username_for(subject),
                           issuer=ISSUER, subject=subject, **fields)


def test_the_subject_is_bound_on_the_first_sign_in_and_finds_the_account_whatever_the_email(make_user):
    imported = make_user("student", username="s1", email="ann@uni.example", student_number="S1")
    assert account_sign_in(person=oidc("sub-ann", email="ann@uni.example")) == imported
    assert SsoIdentity.objects.get(issuer=ISSUER, subject="sub-ann").user == imported
    assert account_sign_in(person=oidc("sub-ann", email="ann.new@mail.example")) == imported
    imported.refresh_from_db()
    assert imported.email == "ann.new@mail.example" and User.objects.count() == 1


@pytest.mark.parametrize("match", [{"email": "ann@uni.example"}, {"student_number": "S1"}])
def test_an_account_bound_to_another_subject_is_never_taken_by_email_or_number(make_user, match):
    ann = make_user("student", username="s1", email="ann@uni.example", student_number="S1")
    SsoIdentity.objects.create(user=ann, issuer=ISSUER, subject="sub-ann")
    with pytest.raises(SignInRefused, match="another OpenID Connect identity"):
        account_sign_in(person=oidc("sub-intruder", **match))
    # Another provider's subject is not the same person's claim: matched as before.
    other = DirectoryPerson(source="OpenID Connect", username="oidc-x", issuer="https://other.example",
                            subject="sub-intruder", **match)
    assert account_sign_in(person=other) == ann


@pytest.mark.parametrize("flags", [{"is_staff": True}, {"is_superuser": True, "is_staff": True}])
@pytest.mark.parametrize("match", [{"email": "boss@uni.example"}, {"student_number": "S9"}])
def test_a_staff_or_superuser_account_is_never_matched_by_email_or_number(make_user, flags, match):
    make_user("admin", username="boss", email="boss@uni.example", student_number="S9", **flags)
    with pytest.raises(SignInRefused, match=r"staff account|superuser"):
        account_sign_in(person=oidc("sub-boss", **match))
    ldap = DirectoryPerson(source="LDAP", username="someone", **match)
    with pytest.raises(SignInRefused, match=r"staff account|superuser"):
        account_sign_in(person=ldap)
    assert not SsoIdentity.objects.exists()


def test_a_deactivated_account_is_signed_out_by_either_sso_backend(client, make_user, settings):
    settings.OIDC_OP_TOKEN_ENDPOINT = f"{ISSUER}/token"
    settings.OIDC_OP_USER_ENDPOINT = f"{ISSUER}/userinfo"
    settings.OIDC_RP_CLIENT_ID, settings.OIDC_RP_CLIENT_SECRET = "rollcall", "secret"
    settings.OIDC_RP_SIGN_ALGO = "HS256"
    backends = ["attendance.sso.backends.DirectoryBackend", "attendance.sso.backends.OpenIDConnectBackend"]
    settings.AUTHENTICATION_BACKENDS = [*backends, "attendance.sso.backends.LocalPasswordBackend"]
    for backend in backends:
        user = make_user("lecturer")
        client.force_login(user, backend=backend)
        assert client.get("/").status_code == 200
        user.is_active = False
        user.save()
        response = client.get("/")
        assert response.status_code == 302 and response["Location"].startswith("/login/")
    assert DirectoryBackend().get_user(user.pk) is None and OpenIDConnectBackend().get_user(user.pk) is None
