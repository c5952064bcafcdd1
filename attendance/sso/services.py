"""A person signed in by the directory or the identity provider becomes exactly one Rollcall account.

Both LDAP and OpenID Connect describe the person as a `DirectoryPerson` and call
`account_sign_in`: the account is found by the provider's subject once bound to one (OpenID Connect),
else by username, student number or email (an imported student is matched, never duplicated), its
names, email, student number and role are brought up to date, and an account is created only when
none matches. Anything ambiguous or unsafe is refused rather than guessed: two different accounts
matching, an email shared by several, an email or number match onto a staff or superuser account,
or onto an account already bound to another subject of the same issuer.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from dataclasses import dataclass

from django.db import transaction
from django.utils import translation

from attendance.courses.services import user_role_problem
from attendance.models import SsoIdentity, User

logger = logging.getLogger(__name__)


class SignInRefused(Exception):
    """The directory or provider vouched for the person, but Rollcall will not let them in."""


@dataclass(frozen=True)
class RoleMap:
    """Which groups (LDAP DNs) or claim values (OIDC) give which role; compared case-insensitively."""

    admin: frozenset[str]
    lecturer: frozenset[str]
    student: frozenset[str]

    @classmethod
    def of(cls, *, admin: Iterable[str], lecturer: Iterable[str], student: Iterable[str]) -> RoleMap:
        def fold(values: Iterable[str]) -> frozenset[str]:
            return frozenset(v.strip().casefold() for v in values if v and v.strip())

        return cls(admin=fold(admin), lecturer=fold(lecturer), student=fold(student))

    @property
    def configured(self) -> bool:
        return bool(self.admin or self.lecturer or self.student)

    def role_for(self, memberships: Iterable[str]) -> str | None:
        """The role these memberships give: admin over lecturer over student.

        None when no mapping is configured at all: the account keeps the role it has (a new one is a
        student). With a mapping, someone in no admin or lecturer group is a student, unless a
        student group is named too, in which case being in none of them refuses the sign-in.
        """
        held = {m.casefold() for m in memberships if m}
        for role, values in ((User.Role.ADMIN, self.admin), (User.Role.LECTURER, self.lecturer)):
            if held & values:
                return role
        if not self.configured:
            return None
        if self.student and not held & self.student:
            raise SignInRefused("the account is in none of the groups that give a role in Rollcall")
        return User.Role.STUDENT


@dataclass(frozen=True)
class DirectoryPerson:
    """What the directory or provider says about the person signing in."""

    source: str  # "LDAP" or "OpenID Connect", for the logs
    username: str
    email: str = ""
    student_number: str = ""
    first_name: str = ""
    last_name: str = ""
    role: str | None = None  # from RoleMap.role_for
    issuer: str = ""  # OpenID Connect: the `iss` and `sub` that identify the person for good
    subject: str = ""


def _match(person: DirectoryPerson) -> User | None:
    """The account of `person`: by bound subject, username, student number or email; raises SignInRefused."""
    if person.subject:
        identity = SsoIdentity.objects.select_related("user").filter(
            issuer=person.issuer, subject=person.subject
        ).first()
        if identity is not None:
            return identity.user
    by_username = list(User.objects.filter(username__iexact=person.username)) if person.username else []
    by_number = list(User.objects.filter(student_number=person.student_number)) if person.student_number else []
    by_email = list(User.objects.filter(email__iexact=person.email)) if person.email else []
    if len(by_email) > 1 and not by_username and not by_number:
        raise SignInRefused(
            f"{len(by_email)} accounts share the email address {person.email}"
        )
    # An email shared by several accounts cannot pick one, but it may confirm the one found otherwise.
    candidates = {u.pk: u for u in (*by_username, *by_number, *(by_email if len(by_email) == 1 else []))}
    if len(candidates) > 1:
        raise SignInRefused(
            "the username, student number and email match different accounts: "
            + ", ".join(sorted(u.username for u in candidates.values()))
        )
    user = next(iter(candidates.values()), None)
    if user is None or by_username:
        return user
    if user.is_staff or user.is_superuser:
        raise SignInRefused(
            f"{user.username} is a staff account, never matched by email or student number"
        )
    if person.subject and SsoIdentity.objects.filter(user=user, issuer=person.issuer).exists():
        raise SignInRefused(
            f"{user.username} belongs to another {person.source} identity of the same provider"
        )
    return user


@transaction.atomic
def account_sign_in(*, person: DirectoryPerson) -> User:
    """The one account for `person`, matched or created and brought up to date; raises SignInRefused."""
    user = _match(person)
    if user is None:
        user = User(username=person.username, role=person.role or User.Role.STUDENT)
        user.set_unusable_password()
        logger.info("%s sign-in created the account %s", person.source, person.username)
    elif user.is_superuser:
        # The local break-glass admin is never taken over by a directory account that shares its
        # name or email: it must stay usable when the directory is wrong or down.
        raise SignInRefused(
            f"{user.username} is a superuser, who signs in with a local password only"
        )
    elif not user.is_active:
        raise SignInRefused(f"the account {user.username} is deactivated")
    elif person.role is not None and user.role != person.role:
        # Only students are on rosters and only lecturers teach (the database refuses anything else):
        # a directory role that would break a roster is refused in words, not as a database error.
        with translation.override("en-gb"):  # for the log, like every refusal here
            problem = user_role_problem(user=user, role=person.role)
        if problem:
            raise SignInRefused(
                f"the directory gives {user.username} the role {person.role}, but {problem}"
            )
        logger.info("%s sign-in changed %s's role from %s to %s", person.source, user.username, user.role, person.role)
        user.role = person.role
    for field, limit in (("first_name", 150), ("last_name", 150), ("email", 254), ("student_number", 32)):
        value = getattr(person, field)
        if value:  # the directory's word, cut to the column (a directory allows longer names)
            setattr(user, field, value[:limit])
    user.save()
    if person.subject:
        SsoIdentity.objects.get_or_create(issuer=person.issuer, subject=person.subject, defaults={"user": user})
    return user
