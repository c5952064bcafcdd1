"""Roster rows -> what an import will do (the preview) -> doing it in one transaction.

The plan reads everything it compares against in a handful of queries (people by student number
and by email, the courses, their memberships), whatever the file's length: 10,000 rows are one
pass in memory, and applying them is a few bulk inserts and updates. Applying plans again inside
the transaction, so what is written is what the database holds then, not at preview time.

Students are matched by student number, lecturers by email; nobody is ever created twice. Rows
are refused, with the reason, rather than guessed at: a lecturer's account in a student row, an
unknown course, a student number twice for one course, a malformed email or date.

A row's reason (or what it changes) is kept as notes: the English message (marked with gettext_noop)
and its parameters, not as text. It is translated when shown, into the reader's language: a large
file's preview is made by a Celery worker, which has no reader, and is listed later from a file.
"""

from __future__ import annotations

import secrets
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, time
from typing import Any

from django.contrib.auth.hashers import UNUSABLE_PASSWORD_PREFIX
from django.core.exceptions import ValidationError
from django.core.validators import validate_email
from django.db import models, transaction
from django.db.models.functions import Lower, Upper
from django.utils import timezone
from django.utils.translation import gettext, gettext_lazy, gettext_noop

from attendance.campus.roster import RosterRow
from attendance.courses.indexes import course_index_rebuild
from attendance.models import Course, CourseMembership, FaceEmbedding, FaceEnrolment, User

CREATED, UPDATED, UNCHANGED, REFUSED = "created", "updated", "unchanged", "refused"
OUTCOMES = (CREATED, UPDATED, UNCHANGED, REFUSED)
OUTCOME_LABELS = {CREATED: gettext_lazy("created"), UPDATED: gettext_lazy("updated"),
                  UNCHANGED: gettext_lazy("unchanged"), REFUSED: gettext_lazy("refused")}
STUDENT_ROLES = {"student", "students", "", "studentica", "studenti"}
LECTURER_ROLES = {"lecturer", "lecturers", "teacher", "instructor", "nastavnik", "nastavnica"}
PROGRESS_EVERY = 500  # rows planned between two calls of the progress callback
WRITE_BATCH = 2000

# Progress callbacks of a background import (campus.import_jobs): (done so far, out of).
Progress = Callable[[int, int], None]


@dataclass(frozen=True)
class Note:
    """One message about a row, translated when shown: `message` is the English msgid (marked with
    gettext_noop) and `params` its JSON-able parameters. A parameter named `account_role` is a
    User.Role value, shown as the role's label; None is shown as "(none)"."""

    message: str
    params: dict[str, Any] = field(default_factory=dict)

    def text(self) -> str:
        params = {k: _shown(k, v) for k, v in self.params.items()}
        return gettext(self.message) % params if params else gettext(self.message)

    def as_json(self) -> dict[str, Any]:
        return {"message": self.message, "params": self.params}

    @classmethod
    def from_json(cls, value: Any) -> Note:
        if isinstance(value, str):  # an English detail kept by an older version: shown as it is
            return cls("%(text)s", {"text": value})
        return cls(str(value["message"]), dict(value.get("params") or {}))


def _shown(key: str, value: Any) -> Any:
    if value is None:
        return gettext("(none)")
    if key == "account_role":
        return str(User.Role(value).label).lower() if value in User.Role.values else value
    return value


def notes_text(notes: Sequence[Note]) -> str:
    return "; ".join(note.text() for note in notes)


@dataclass(frozen=True)
class RowPlan:
    row: RosterRow
    outcome: str
    notes: tuple[Note, ...] = ()  # why it is refused, or what it changes

    @property
    def detail(self) -> str:
        """The notes in the active language (the reader's)."""
        return notes_text(self.notes)

    @property
    def outcome_label(self) -> str:
        return str(OUTCOME_LABELS.get(self.outcome, self.outcome))


@dataclass(frozen=True)
class Removal:
    membership_id: int
    course_id: int
    student_id: int
    student: str
    student_number: str
    course: str


@dataclass
class ImportPlan:
    rows: list[RowPlan] = field(default_factory=list)
    removals: list[Removal] = field(default_factory=list)
    new_users: list[User] = field(default_factory=list)
    changed_users: dict[int, User] = field(default_factory=dict)
    new_memberships: list[tuple[User, int, datetime | None]] = field(default_factory=list)
    new_lecturers: list[tuple[User, int]] = field(default_factory=list)

    def counts(self) -> dict[str, int]:
        counts = dict.fromkeys(OUTCOMES, 0)
        for row in self.rows:
            counts[row.outcome] += 1
        return counts

    @property
    def changes_anything(self) -> bool:
        return bool(self.new_users or self.changed_users or self.new_memberships or self.new_lecturers)


def _unusable_password() -> str:
    # What make_password(None) makes (they sign in through single sign-on or get a password from an
    # admin), from os.urandom in one call instead of 40 random.choice calls: 10,000 rows made it a
    # third of the preview's time.
    return UNUSABLE_PASSWORD_PREFIX + secrets.token_urlsafe(30)


class _Planner:
    def __init__(self, rows: Sequence[RosterRow], *, require_course: bool) -> None:
        self.require_course = require_course
        numbers = {r.student_number for r in rows if r.student_number}
        emails = {r.email for r in rows if r.email}
        self.by_number = {u.student_number: u for u in User.objects.filter(student_number__in=numbers)}
        self.by_email: dict[str, list[User]] = {}
        for user in User.objects.annotate(email_l=Lower("email")).filter(email_l__in=emails):
            self.by_email.setdefault(user.email.lower(), []).append(user)
        self.usernames = set(User.objects.filter(username__in=numbers | emails).values_list("username", flat=True))
        keys = {(r.course_code, r.term) for r in rows if r.course_code and r.term}
        self.courses = {
            (c.code_u, c.term): c  # type: ignore[attr-defined]
            for c in Course.objects.annotate(code_u=Upper("code")).filter(
                code_u__in={k[0] for k in keys}, term__in={k[1] for k in keys})
        }
        self.memberships = list(
            CourseMembership.objects.filter(course__in=self.courses.values()).values_list(
                "id", "course_id", "student_id", "student__student_number", "student__first_name",
                "student__last_name")
        )
        self.member_pairs = {(m[1], m[2]) for m in self.memberships}
        through = Course.lecturers.through
        self.lecturer_pairs = set(
            through.objects.filter(course__in=self.courses.values()).values_list("course_id", "user_id"))
        self.plan = ImportPlan()
        self.new_by_key: dict[str, User] = {}  # a person created by an earlier row: student number or email
        self.first_line: dict[tuple[str, int | None], int] = {}  # (student number, course) -> line
        self.person_line: dict[str, tuple[int, str, str, str]] = {}
        self.planned_pairs: set[tuple[int, int]] = set()  # (course id, id(user)) added by this import
        self.numbers_in_course: dict[int, set[str]] = {}

    def refuse(self, row: RosterRow, reason: str | Note, **params: Any) -> None:
        note = reason if isinstance(reason, Note) else Note(reason, params)
        self.plan.rows.append(RowPlan(row, REFUSED, (note,)))

    def row(self, row: RosterRow) -> None:
        course: Course | None = None
        if row.course_code or row.term or self.require_course:
            if not (row.course_code and row.term):
                return self.refuse(row, gettext_noop("A course code and a term are both needed."))
            course = self.courses.get((row.course_code, row.term))
            if course is None:
                return self.refuse(row, gettext_noop("Unknown course %(code)s (%(term)s): create it first."),
                                   code=row.course_code, term=row.term)
            if row.student_number:
                self.numbers_in_course.setdefault(course.pk, set()).add(row.student_number)
        if row.email:
            try:
                validate_email(row.email)
            except ValidationError:
                return self.refuse(row, gettext_noop("“%(email)s” is not an email address."), email=row.email)
        joined_at = None
        if row.joined_on:
            try:
                joined_at = timezone.make_aware(datetime.combine(date.fromisoformat(row.joined_on[:10]), time()))
            except ValueError:
                return self.refuse(row, gettext_noop("“%(value)s” under Joined on is not a date (write 2026-09-01)."),
                                   value=row.joined_on)
        if row.role in STUDENT_ROLES:
            return self.student(row, course, joined_at)
        if row.role in LECTURER_ROLES:
            return self.lecturer(row, course)
        return self.refuse(row, gettext_noop("The role “%(role)s” is neither student nor lecturer."), role=row.role)

    def _same_person(self, row: RosterRow, key: str) -> Note | None:
        seen = self.person_line.get(key)
        mine = (row.first_name, row.last_name, row.email)
        if seen is None:
            self.person_line[key] = (row.line, *mine)
            return None
        if seen[1:] != mine:
            return Note(gettext_noop("Line %(line)s gives %(key)s another name or email; make them the same."),
                        {"line": seen[0], "key": key})
        return None

    def _update(self, user: User, row: RosterRow) -> list[Note]:
        changes = []
        for attr, value, message in (
                ("first_name", row.first_name, gettext_noop("first name %(old)s → %(new)s")),
                ("last_name", row.last_name, gettext_noop("last name %(old)s → %(new)s")),
                ("email", row.email, gettext_noop("email %(old)s → %(new)s"))):
            current = getattr(user, attr)
            if value and (current.lower() if attr == "email" else current) != value:
                changes.append(Note(message, {"old": getattr(user, attr) or None, "new": value}))
                setattr(user, attr, value)
        if row.active is not None and user.is_active != row.active:
            changes.append(Note(gettext_noop("account reactivated") if row.active
                                else gettext_noop("account deactivated")))
            user.is_active = row.active
        if changes and user.pk is not None:
            self.plan.changed_users[user.pk] = user
        return changes

    def _new_user(self, row: RosterRow, *, username: str, role: str, number: str) -> User | Note:
        if username in self.usernames:
            return Note(gettext_noop("The user name %(username)s is taken by another account."),
                        {"username": username})
        if not row.last_name:
            if number:
                return Note(gettext_noop("No account has student number %(key)s yet, and no name is given to "
                                         "create one."), {"key": username})
            return Note(gettext_noop("No account has the email %(key)s yet, and no name is given to create one."),
                        {"key": username})
        user = User(username=username, student_number=number, first_name=row.first_name, last_name=row.last_name,
                    email=row.email, role=role, password=_unusable_password(),
                    is_active=True if row.active is None else row.active)
        self.usernames.add(username)
        self.plan.new_users.append(user)
        return user

    def _finish(self, row: RosterRow, user: User, created: bool, changes: list[Note], joined: Note | None
                ) -> None:
        done = ([Note(gettext_noop("new account"))] if created else []) + ([joined] if joined else [])
        if created or joined:
            self.plan.rows.append(RowPlan(row, CREATED, tuple(done + changes)))
        elif changes:
            self.plan.rows.append(RowPlan(row, UPDATED, tuple(changes)))
        else:
            self.plan.rows.append(RowPlan(row, UNCHANGED))

    def _pair_new(self, course: Course, user: User, existing: set[tuple[int, int]]) -> bool:
        if user.pk is not None and (course.pk, user.pk) in existing:
            return False
        if (course.pk, id(user)) in self.planned_pairs:
            return False
        self.planned_pairs.add((course.pk, id(user)))
        return True

    def student(self, row: RosterRow, course: Course | None, joined_at: datetime | None) -> None:
        number = row.student_number
        if not number:
            return self.refuse(row, gettext_noop("A student row needs a student number."))
        key = (number, course.pk if course else None)
        if key in self.first_line:
            return self.refuse(row, gettext_noop("Student number %(number)s is on line %(line)s too."),
                               number=number, line=self.first_line[key])
        self.first_line[key] = row.line
        if problem := self._same_person(row, number):
            return self.refuse(row, problem)
        user = self.by_number.get(number) or self.new_by_key.get(number)
        if user is not None and not user.is_student:
            return self.refuse(row, gettext_noop("%(number)s is %(name)s, a %(account_role)s account: only students "
                                                 "can be on a course's roster."),
                               number=number, name=user.display_name, account_role=user.role)
        created = False
        if user is None:
            for owner in self.by_email.get(row.email, []) if row.email else []:
                if not owner.is_student:
                    return self.refuse(row, gettext_noop("%(email)s belongs to %(name)s, a %(account_role)s: "
                                                         "not a student."),
                                       email=row.email, name=owner.display_name, account_role=owner.role)
                return self.refuse(row, gettext_noop("%(email)s is already the email of student number %(number)s."),
                                   email=row.email, number=owner.student_number or owner.username)
            made = self._new_user(row, username=number, role=User.Role.STUDENT, number=number)
            if isinstance(made, Note):
                return self.refuse(row, made)
            user, created = made, True
            self.new_by_key[number] = user
        changes = [] if created else self._update(user, row)
        joined = None
        if course is not None and self._pair_new(course, user, self.member_pairs):
            self.plan.new_memberships.append((user, course.pk, joined_at))
            joined = Note(gettext_noop("added to %(course)s"), {"course": course.code})
        self._finish(row, user, created, changes, joined)

    def lecturer(self, row: RosterRow, course: Course | None) -> None:
        if not row.email:
            return self.refuse(row, gettext_noop("A lecturer row needs an email address (lecturers are matched by "
                                                 "email)."))
        if (owner := self.by_number.get(row.student_number)) is not None and owner.is_student:
            return self.refuse(row, gettext_noop("%(number)s is %(name)s, a student: a student cannot teach a "
                                                 "course."), number=row.student_number, name=owner.display_name)
        if problem := self._same_person(row, row.email):
            return self.refuse(row, problem)
        owners = self.by_email.get(row.email, [])
        if len(owners) > 1:
            # Never one account: len(owners) > 1, so no plural forms (the Croatian needs no agreement either).
            return self.refuse(row, gettext_noop("%(count)s accounts have the email %(email)s; keep one."),
                               count=len(owners), email=row.email)
        user = owners[0] if owners else self.new_by_key.get(row.email)
        if user is not None and user.role != User.Role.LECTURER:
            return self.refuse(row, gettext_noop("%(email)s is %(name)s, a %(account_role)s account: only lecturers "
                                                 "can teach a course."),
                               email=row.email, name=user.display_name, account_role=user.role)
        created = False
        if user is None:
            made = self._new_user(row, username=row.email, role=User.Role.LECTURER, number="")
            if isinstance(made, Note):
                return self.refuse(row, made)
            user, created = made, True
            self.new_by_key[row.email] = user
        changes = [] if created else self._update(user, row)
        joined = None
        if course is not None and self._pair_new(course, user, self.lecturer_pairs):
            self.plan.new_lecturers.append((user, course.pk))
            joined = Note(gettext_noop("teaches %(course)s"), {"course": course.code})
        self._finish(row, user, created, changes, joined)

    def removals(self) -> list[Removal]:
        """Memberships of the file's courses whose student no row names (refused rows count as named:
        a typo in a row must not take a student off their course)."""
        codes = {c.pk: c.code for c in self.courses.values()}
        return [
            Removal(m_id, course_id, student_id, f"{first} {last}".strip(), number or "", codes[course_id])
            for m_id, course_id, student_id, number, first, last in self.memberships
            if course_id in self.numbers_in_course and number not in self.numbers_in_course[course_id]
        ]


def import_plan(rows: Sequence[RosterRow], *, sync: bool = False, require_course: bool = True,
                progress: Progress | None = None) -> ImportPlan:
    """What importing `rows` would do, row by row; with `sync`, the memberships it would remove.
    `progress`, if given, hears every few hundred rows how many are planned."""
    planner = _Planner(rows, require_course=require_course)
    for i, row in enumerate(rows, start=1):
        planner.row(row)
        if progress is not None and (i % PROGRESS_EVERY == 0 or i == len(rows)):
            progress(i, len(rows))
    if sync:
        planner.plan.removals = planner.removals()
    return planner.plan


def indexes_follow_rosters(course_students: dict[int, set[int]]) -> None:
    """Courses whose roster gained or lost a student with face data get their index rebuilt."""
    student_ids = set().union(*course_students.values()) if course_students else set()
    with_faces = set(FaceEmbedding.objects.filter(
        student_id__in=student_ids, enrolment__status=FaceEnrolment.Status.READY).values_list("student_id", flat=True))
    for course in Course.objects.filter(pk__in=[c for c, ids in course_students.items() if ids & with_faces]):
        course_index_rebuild(course=course)


def write_count(plan: ImportPlan) -> int:
    """How many rows applying `plan` writes (accounts, changed accounts, memberships, lecturers)."""
    return len(plan.new_users) + len(plan.changed_users) + len(plan.new_memberships) + len(plan.new_lecturers)


def import_apply(
    rows: Sequence[RosterRow], *, sync: bool = False, remove_absent: bool = False, require_course: bool = True,
    planned: Progress | None = None, written: Progress | None = None,
) -> ImportPlan:
    """Import the rows that are not refused, all in one transaction; with `sync` and `remove_absent`,
    also take the students no row names off the file's courses. `planned` and `written`, if given,
    hear how far the planning and the writing are (batch by batch: the transaction is still one)."""
    with transaction.atomic():
        plan = import_plan(rows, sync=sync, require_course=require_course, progress=planned)
        total, done = write_count(plan), 0

        def batches(model: type[models.Model], objects: list[Any], *, ignore_conflicts: bool = False) -> None:
            nonlocal done
            for start in range(0, len(objects), WRITE_BATCH):
                batch = objects[start:start + WRITE_BATCH]
                model._default_manager.bulk_create(batch, ignore_conflicts=ignore_conflicts)
                done += len(batch)
                if written is not None:
                    written(done, total)

        if written is not None:
            written(0, total)
        batches(User, plan.new_users)
        changed = list(plan.changed_users.values())
        for start in range(0, len(changed), WRITE_BATCH):
            User.objects.bulk_update(changed[start:start + WRITE_BATCH], ["first_name", "last_name", "email",
                                                                         "is_active"])
            done += len(changed[start:start + WRITE_BATCH])
            if written is not None:
                written(done, total)
        now = timezone.now()
        batches(CourseMembership, [CourseMembership(course_id=course_id, student=user, joined_at=joined or now)
                                   for user, course_id, joined in plan.new_memberships], ignore_conflicts=True)
        through = Course.lecturers.through
        batches(through, [through(course_id=course_id, user=user) for user, course_id in plan.new_lecturers],
                ignore_conflicts=True)
        touched: dict[int, set[int]] = {}
        for user, course_id, _ in plan.new_memberships:
            touched.setdefault(course_id, set()).add(user.pk)
        if sync and remove_absent and plan.removals:
            CourseMembership.objects.filter(pk__in=[r.membership_id for r in plan.removals]).delete()
            for removal in plan.removals:
                touched.setdefault(removal.course_id, set()).add(removal.student_id)
        indexes_follow_rosters(touched)
    return plan
