"""Signing in through OpenID Connect in Chromium: the real redirect flow to a provider process and back."""

from __future__ import annotations

import pytest

from attendance.models import SsoIdentity, User
from tests.browser import screenshot
from tests.sso.conftest import PROVIDER_PASSWORD

pytestmark = [pytest.mark.slow, pytest.mark.browser, pytest.mark.usefixtures("fresh_redis")]


def _sign_in_at_the_provider(browser, base_url: str, username: str):
    page = browser.new_page()
    page.goto(f"{base_url}/login/")
    screenshot(page, "sso-sign-in-page")
    page.click("text=Sign in with Test University")
    page.wait_for_selector("#provider-username")  # the provider's own page, on its own origin
    assert page.url.startswith("http://127.0.0.1:")
    page.fill("#provider-username", username)
    page.fill("#provider-password", PROVIDER_PASSWORD)
    page.click("#provider-submit")
    return page


def test_a_lecturer_signs_in_with_the_provider_and_lands_matched_by_email(
    live_server, browser_with_camera, oidc_settings, make_user
):
    imported = make_user("student", username="l-lehrerin", email="LENA.OIDC@uni.test")
    page = _sign_in_at_the_provider(browser_with_camera(), live_server.url, "lena.oidc")

    page.wait_for_url(f"{live_server.url}/")
    screenshot(page, "sso-oidc-lecturer-signed-in")
    assert "Signed in as l-lehrerin" in page.content()
    assert page.locator(".usermenu .role").inner_text() == "Lecturer"
    imported.refresh_from_db()
    assert (imported.role, imported.first_name, imported.last_name) == ("lecturer", "Lena", "Lehrerin")
    assert User.objects.count() == 1


def test_a_person_the_roles_do_not_admit_comes_back_refused(live_server, browser_with_camera, oidc_settings, settings):
    settings.ROLLCALL_OIDC_STUDENT_ROLES = ["students"]  # ines is in no group that gives a role
    page = _sign_in_at_the_provider(browser_with_camera(), live_server.url, "ines")

    page.wait_for_url(f"{live_server.url}/login/?sso=failed")
    assert "Signing in with Test University did not work" in page.content()
    assert not User.objects.exists()


def test_a_new_person_gets_one_account_found_again_by_the_subject(live_server, browser_with_camera, oidc_settings):
    browser = browser_with_camera()
    page = _sign_in_at_the_provider(browser, live_server.url, "ines")
    page.wait_for_url(f"{live_server.url}/")
    created = User.objects.get()
    assert created.username.startswith("oidc-") and created.role == "student"
    assert (created.email, created.first_name, created.has_usable_password()) == ("ines@uni.test", "Inés", False)

    page.context.clear_cookies()  # signed out of both: the provider asks for the password again
    _sign_in_at_the_provider(browser, live_server.url, "ines").wait_for_url(f"{live_server.url}/")
    assert list(User.objects.values_list("pk", flat=True)) == [created.pk]


def test_an_imported_student_is_matched_by_the_student_number_claim(
    live_server, browser_with_camera, oidc_settings, make_user
):
    # The roster has the university address, the provider a private one: only the number ties them.
    imported = make_user("student", username="s3003", email="tomas@uni.test", student_number="S3003")

    page = _sign_in_at_the_provider(browser_with_camera(), live_server.url, "tomas")

    page.wait_for_url(f"{live_server.url}/")
    assert "Signed in as s3003" in page.content()
    imported.refresh_from_db()
    assert (imported.role, imported.email) == ("student", "tomas.private@mail.test")
    assert User.objects.count() == 1


@pytest.mark.parametrize("username", ["mallory", "eve"])  # no email_verified claim; email_verified "false"
def test_an_unverified_email_never_signs_in_to_the_account_that_has_it(
    live_server, browser_with_camera, oidc_settings, make_user, username
):
    victim = make_user("student", username="victim", email="victim@uni.test", student_number="S7")
    page = _sign_in_at_the_provider(browser_with_camera(), live_server.url, username)

    page.wait_for_url(f"{live_server.url}/")
    assert "Signed in as victim" not in page.content()
    created = User.objects.exclude(pk=victim.pk).get()
    assert created.username.startswith("oidc-") and created.email == ""  # the unchecked address is not kept
    assert SsoIdentity.objects.get().user == created
    victim.refresh_from_db()
    assert (victim.first_name, victim.email) == ("Student", "victim@uni.test") and not victim.sso_identities.exists()


def test_a_provider_trusted_with_its_emails_matches_without_the_claim_but_never_against_false(
    live_server, browser_with_camera, oidc_settings, make_user, settings
):
    settings.ROLLCALL_OIDC_TRUST_EMAIL = True  # as for Entra ID, which sends no email_verified
    victim = make_user("student", username="victim", email="victim@uni.test")
    browser = browser_with_camera()
    page = _sign_in_at_the_provider(browser, live_server.url, "mallory")
    page.wait_for_url(f"{live_server.url}/")
    assert SsoIdentity.objects.get().user == victim

    page.context.clear_cookies()
    _sign_in_at_the_provider(browser, live_server.url, "eve").wait_for_url(f"{live_server.url}/")
    assert User.objects.count() == 2 and SsoIdentity.objects.get(user__username__startswith="oidc-")
