"""What the accessibility tests share: axe-core injected into a Playwright page, the seeded data
every page is shown with, and the list of pages to audit per role.

axe-core is the npm package `./rollcall test` fetches (pinned version and sha256) into tests/.tools/;
its file is named by ROLLCALL_AXE_JS, which ./rollcall sets.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import REPO_ROOT

# WCAG 2.0 and 2.1, levels A and AA: the rules the Web Accessibility Directive and the ADA Title II
# rule refer to. "best-practice" rules are not in this set.
WCAG_TAGS = ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa"]

DESKTOP = {"width": 1280, "height": 900}
PHONE = {"width": 390, "height": 844}


def axe_source() -> str:
    named = os.environ.get("ROLLCALL_AXE_JS")
    candidates = [Path(named)] if named else sorted((REPO_ROOT / "tests" / ".tools").glob("axe-core-*/axe.min.js"))
    for path in candidates:
        if path.is_file():
            return path.read_text(encoding="utf-8")
    pytest.fail("axe-core is not installed (tests/.tools/axe-core-*/axe.min.js): run ./rollcall test, which fetches it")


@dataclass(frozen=True)
class Violation:
    page: str
    rule: str
    impact: str
    help: str
    targets: list[str]
    why: str  # axe's failure summary of the first element, e.g. the two colours and their ratio

    def __str__(self) -> str:
        where = ", ".join(self.targets[:4]) + (f" and {len(self.targets) - 4} more" if len(self.targets) > 4 else "")
        return f"{self.page}: {self.rule} ({self.impact}) {self.help} -> {where} [{self.why}]"


def axe_run(page: Any, source: str, *, name: str, exclude: tuple[str, ...] = ()) -> list[Violation]:
    """Run axe's WCAG 2.0/2.1 A and AA rules on the page as it is now; the violations found."""
    if not page.evaluate("() => typeof window.axe === 'object'"):
        page.add_script_tag(content=source)
    context: dict[str, Any] = {"exclude": [[selector] for selector in exclude]} if exclude else {}
    result = page.evaluate(
        """async ([context, tags]) => {
            const r = await axe.run(Object.keys(context).length ? context : document,
                                    {runOnly: {type: "tag", values: tags}, resultTypes: ["violations"]});
            return r.violations.map(v => ({id: v.id, impact: v.impact, help: v.help,
                                           targets: v.nodes.map(n => n.target.join(" ")),
                                           why: (v.nodes[0].failureSummary || "").split("\\n").slice(1).join(" ")}));
        }""",
        [context, WCAG_TAGS],
    )
    return [Violation(name, v["id"], v["impact"] or "", v["help"], v["targets"], v["why"]) for v in result]


def horizontal_overflow(page: Any) -> int:
    """How many CSS pixels the page is wider than the viewport (0: no sideways scrolling)."""
    return int(page.evaluate("() => document.scrollingElement.scrollWidth - window.innerWidth"))


def small_targets(page: Any, *, minimum: int = 24) -> list[str]:
    """Controls smaller than `minimum` CSS px either way (WCAG 2.2's 2.5.8 target size): buttons,
    the user menu, button-styled links and the nav. Links inside running text are exempt there."""
    return page.evaluate(
        """(minimum) => {
            const menu = document.querySelector('details.usermenu');
            const wasOpen = menu && menu.open;
            if (menu) menu.open = true;  // measure Sign out too
            const small = [...document.querySelectorAll(
                'button, summary, a.button, a.small, .nav a, .linkbutton, input[type=submit]')]
              .filter(el => el.offsetParent !== null && !el.closest('.swagger-ui'))
              .map(el => [el, el.getBoundingClientRect()])
              .filter(([, r]) => r.width < minimum || r.height < minimum)
              .map(([el, r]) => `${(el.textContent || el.getAttribute('aria-label') || el.tagName).trim()}`
                                + ` ${Math.round(r.width)}x${Math.round(r.height)}`);
            if (menu) menu.open = wasOpen;
            return small; }""",
        minimum,
    )


# --- Seeded data --------------------------------------------------------------------------------


@dataclass
class Seed:
    """One of everything a page can show: a course with students in every state, a closed session
    with records of each status, an open session with a kiosk link, enrolled and failed faces."""

    admin: Any
    lecturer: Any
    student: Any  # enrolled, on the course, with a late and a present record
    failed_student: Any  # whose last enrolment video was refused
    course: Any
    closed_session: Any
    open_session: Any
    kiosk_token: str
    extra: dict[str, Any] = field(default_factory=dict)  # what later pages need, added by their seeders


SEEDERS: list[Callable[[Seed], None]] = []
"""Functions that add to the seed what a later feature's pages need (append one with its pages)."""


def seed_everything(make_user: Callable[..., Any]) -> Seed:
    from django.utils import timezone

    from attendance.models import AttendanceRecord, Course, CourseMembership, FaceEnrolment, Session
    from attendance.sessions.services import session_kiosk_token_create

    admin = make_user("admin", is_staff=True, is_superuser=True, first_name="Ada", last_name="Admin")
    lecturer = make_user("lecturer", first_name="Lena", last_name="Lecturer")
    student = make_user("student", first_name="Katie", last_name="Hill", student_number="S1001")
    failed = make_user(
        "student",
        first_name="Bartholomew-Maximilian",
        last_name="Featherstonehaugh-Worthington",
        student_number="S1002",
    )
    others = [make_user("student", first_name=f"Student{n}", last_name="Example") for n in range(3)]
    course = Course.objects.create(code="CV101", title="Computer Vision", term="2026-autumn")
    course.lecturers.add(lecturer)
    now = timezone.now()
    for person in (student, failed, *others):
        CourseMembership.objects.create(course=course, student=person, joined_at=now - timedelta(days=30))

    closed = Session.objects.create(
        course=course,
        title="Week 1 lecture",
        status=Session.Status.CLOSED,
        opened_at=now - timedelta(days=7, hours=1),
        closed_at=now - timedelta(days=7),
        opened_by=lecturer,
    )
    later = Session.objects.create(
        course=course,
        title="Week 2 lab",
        status=Session.Status.CLOSED,
        opened_at=now - timedelta(days=3, hours=1),
        closed_at=now - timedelta(days=3),
        opened_by=lecturer,
    )
    statuses = ["present", "late", "absent", "excused", "absent"]
    for session, shift in ((closed, 0), (later, 1)):
        for person, status in zip((student, failed, *others), statuses[shift:] + statuses[:shift], strict=True):
            AttendanceRecord.objects.create(
                session=session,
                student=person,
                status=status,
                method="face" if status in ("present", "late") else "manual",
                confidence=0.41 if status in ("present", "late") else None,
                marked_at=session.opened_at + timedelta(minutes=5),
            )
    open_session = Session.objects.create(
        course=course,
        title="Week 3 lecture",
        status=Session.Status.OPEN,
        opened_at=now - timedelta(minutes=10),
        opened_by=lecturer,
    )
    AttendanceRecord.objects.create(
        session=open_session,
        student=student,
        status="present",
        method="face",
        confidence=0.38,
        marked_at=now - timedelta(minutes=8),
    )
    AttendanceRecord.objects.create(
        session=open_session, student=others[0], status="late", method="manual", marked_at=now - timedelta(minutes=1)
    )
    token = session_kiosk_token_create(session=open_session, by=lecturer)

    FaceEnrolment.objects.create(
        student=student, status=FaceEnrolment.Status.READY, consent_given_at=now, finished_at=now - timedelta(days=1)
    )
    FaceEnrolment.objects.create(
        student=failed,
        status=FaceEnrolment.Status.FAILED,
        consent_given_at=now,
        error_code="no_face",
        finished_at=now - timedelta(hours=1),
        error_message="No face was found in the video. Face the camera in good light.",
    )
    seed = Seed(
        admin=admin,
        lecturer=lecturer,
        student=student,
        failed_student=failed,
        course=course,
        closed_session=closed,
        open_session=open_session,
        kiosk_token=token,
    )
    for seeder in SEEDERS:
        seeder(seed)
    return seed


# --- The pages ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class AuditedPage:
    """A page as one role sees it. `url` takes the seed and returns the path; `who` picks the
    signed-in user from the seed (None: nobody signed in). `before` is JavaScript (an async
    function) run on the loaded page before the audit, to open what is closed at first. `exclude`
    lists selectors of third-party markup axe is not run on, each with its reason in `why`."""

    name: str
    url: Callable[[Seed], str]
    before: str = ""
    navigates: bool = False  # `before` submits a form: the audit runs on the page it leads to
    exclude: tuple[str, ...] = ()
    why: str = ""
    status: int = 200  # what the page answers: the kiosk's refusals are pages of their own (404, 409)


# A roster whose preview shows created rows (new students of the seeded course) and refused ones (a
# malformed email, an unknown course), chosen in the file input and submitted.
UPLOAD_A_ROSTER = """() => {
  const rows = [
    "Student number,Name,Email,Course code,Term",
    "S7001,Ana Novak,ana.novak@uni.test,CV101,2026-autumn",
    "S7002,Ivo Horvat,ivo.horvat@uni.test,CV101,2026-autumn",
    "S7003,Mia Kovac,not-an-email,CV101,2026-autumn",
    "S7004,Luka Babic,luka.babic@uni.test,NOPE1,2026-autumn",
  ];
  const input = document.querySelector("input[type=file]");
  const files = new DataTransfer();
  files.items.add(new File([rows.join("\\n") + "\\n"], "roster.csv", { type: "text/csv" }));
  input.files = files.files;
  input.form.requestSubmit();
}"""


def _r(name: str, *args: Callable[[Seed], Any]) -> Callable[[Seed], str]:
    from django.urls import reverse

    return lambda seed: reverse(name, args=[arg(seed) for arg in args])


COURSE = lambda seed: seed.course.pk  # noqa: E731
OPEN = lambda seed: seed.open_session.pk  # noqa: E731
CLOSED = lambda seed: seed.closed_session.pk  # noqa: E731
STUDENT = lambda seed: seed.student.pk  # noqa: E731
FAILED = lambda seed: seed.failed_student.pk  # noqa: E731

# Swagger UI: every operation expanded, then "Try it out" on each (its forms appear only then).
OPEN_EVERY_OPERATION = """async () => {
    const until = async (test) => {
        for (let i = 0; i < 100 && !test(); i++) await new Promise(r => setTimeout(r, 50));
    };
    await until(() => document.querySelector('.opblock-summary-control'));
    const operations = document.querySelectorAll('.opblock-summary-control');
    operations.forEach(b => b.click());
    await until(() => document.querySelectorAll('.try-out__btn').length >= operations.length);
    document.querySelectorAll('.try-out__btn').forEach(b => b.click());
    await until(() => document.querySelectorAll('.execute').length >= operations.length);
}"""

# Who signs in for each role's walk: a function of the seed, None for nobody.
ROLE_USERS: dict[str, Callable[[Seed], Any] | None] = {
    "anonymous": None,
    "kiosk": None,
    "admin": lambda seed: seed.admin,
    "lecturer": lambda seed: seed.lecturer,
    "student": lambda seed: seed.student,
    "failed_student": lambda seed: seed.failed_student,
}

def _seed_a_running_import(seed: Seed) -> None:
    """A large roster import part-way through its preview, as the worker leaves it between two
    progress reports: its page is the progress bar (the worker is not running in this test)."""
    from attendance.campus import import_jobs
    from attendance.campus.uploads import upload_store

    data = b"Student number,Name,Email,Course code,Term\nS8000,Ana Novak,ana@uni.test,CV101,2026-autumn\n"
    token = upload_store(data=data, filename="roster-10000.csv", sync=False, by=seed.admin)
    import_jobs._job_write(token, {
        "kind": import_jobs.PREVIEW, "state": import_jobs.RUNNING, "stage": "reading", "read": 4000, "planned": 0,
        "written": 0, "total": 10000, "write_total": 0, "remove_absent": False,
    })
    seed.extra["running_import"] = token


SEEDERS.append(_seed_a_running_import)


def _seed_a_kiosk_link_opened_elsewhere(seed: Seed) -> None:
    """A second open session whose kiosk link another device has already opened: the link then
    refuses every other browser with a page of its own."""
    from django.utils import timezone

    from attendance.models import Session
    from attendance.sessions.services import session_kiosk_device_pair, session_kiosk_token_create

    session = Session.objects.create(course=seed.course, title="Week 3 tutorial", status=Session.Status.OPEN,
                                     opened_at=timezone.now() - timedelta(minutes=5), opened_by=seed.lecturer)
    token = session_kiosk_token_create(session=session, by=seed.lecturer)
    session_kiosk_device_pair(token=token)
    seed.extra["used_kiosk_token"] = token


SEEDERS.append(_seed_a_kiosk_link_opened_elsewhere)


# Every page of the app, per role. A new page: add an AuditedPage under each role that can open it
# (and a seeder to SEEDERS when it needs rows the seed does not have yet).
PAGES: dict[str, list[AuditedPage]] = {
    "anonymous": [
        AuditedPage("sign-in", _r("login")),
        AuditedPage("privacy notice", _r("privacy-notice")),
    ],
    "kiosk": [
        AuditedPage("kiosk, start on this device", lambda seed: f"/kiosk/{seed.kiosk_token}/"),
        # Starting it pairs this browser and sends it on to the kiosk page (/kiosk/).
        AuditedPage("kiosk", lambda seed: f"/kiosk/{seed.kiosk_token}/",
                    before="() => document.querySelector('#kiosk-start button').click()", navigates=True),
        AuditedPage("kiosk, link no longer valid", lambda seed: "/kiosk/not-a-valid-token/", status=404),
        AuditedPage("kiosk, link already opened on another device",
                    lambda seed: f"/kiosk/{seed.extra['used_kiosk_token']}/", status=409),
    ],
    "admin": [
        AuditedPage("admin home", _r("home")),
        AuditedPage("course list", _r("course-list")),
        AuditedPage("course page", _r("course-detail", COURSE)),
        AuditedPage("check-in, open session", _r("session-checkin", OPEN)),
        AuditedPage("check-in, closed session", _r("session-checkin", CLOSED)),
        AuditedPage("reports", _r("report-index")),
        AuditedPage("course report", _r("course-report", COURSE)),
        AuditedPage("session report", _r("session-report", CLOSED)),
        AuditedPage("student report", _r("student-report", STUDENT)),
        AuditedPage("enrol a student", _r("student-enrol", FAILED)),
        AuditedPage("withdraw a student's consent", _r("student-withdraw-consent", STUDENT)),
        AuditedPage("biometric data overview", _r("biometric-overview")),
        AuditedPage("privacy notice", _r("privacy-notice")),
        AuditedPage("manage", _r("campus-home")),
        AuditedPage("manage courses", _r("campus-courses")),
        AuditedPage("manage: new course", _r("campus-course-create")),
        AuditedPage("manage: edit course", _r("campus-course-edit", COURSE)),
        AuditedPage("manage: course roster", _r("campus-roster", COURSE)),
        AuditedPage("manage people", _r("campus-people")),
        AuditedPage("manage: new person", _r("campus-person-create")),
        AuditedPage("manage: edit person", _r("campus-person-edit", STUDENT)),
        AuditedPage("manage lecturers", _r("campus-lecturers")),
        AuditedPage("manage memberships", _r("campus-memberships")),
        AuditedPage("manage: roster import", _r("campus-import")),
        AuditedPage("manage: roster import preview", _r("campus-import"), before=UPLOAD_A_ROSTER, navigates=True),
        AuditedPage("manage: roster import in progress",
                    _r("campus-import-preview", lambda seed: seed.extra["running_import"])),
        AuditedPage("timetable", _r("course-timetable", COURSE)),
        AuditedPage("excuses", _r("excuse-inbox")),
        AuditedPage("points and warnings", _r("course-grading", COURSE)),
        AuditedPage("API docs", lambda seed: "/api/docs/"),
        AuditedPage("API docs, every operation open to try", lambda seed: "/api/docs/", before=OPEN_EVERY_OPERATION),
    ],
    "lecturer": [
        AuditedPage("lecturer home", _r("home")),
        AuditedPage("my courses", _r("course-list")),
        AuditedPage("course page", _r("course-detail", COURSE)),
        AuditedPage("check-in, open session", _r("session-checkin", OPEN)),
        AuditedPage("reports", _r("report-index")),
        AuditedPage("course report", _r("course-report", COURSE)),
        AuditedPage("course report sorted by rate", lambda seed: _r("course-report", COURSE)(seed) + "?sort=rate"),
        AuditedPage("session report", _r("session-report", CLOSED)),
        AuditedPage("student report", _r("student-report", STUDENT)),
        AuditedPage("rosters", _r("campus-home")),
        AuditedPage("course roster", _r("campus-roster", COURSE)),
        AuditedPage("timetable", _r("course-timetable", COURSE)),
        AuditedPage("excuses", _r("excuse-inbox")),
        AuditedPage("calendar", _r("feed-list")),
        AuditedPage("points and warnings", _r("course-grading", COURSE)),
    ],
    "student": [
        AuditedPage("student home", _r("home")),
        AuditedPage("enrol my face, enrolled", _r("enrolment")),
        AuditedPage("my attendance", _r("my-attendance")),
        AuditedPage("my excuses", _r("excuse-inbox")),
        AuditedPage("my warnings", _r("my-warnings")),
        AuditedPage("calendar", _r("feed-list")),
        AuditedPage("withdraw consent", _r("withdraw-consent")),
        AuditedPage("privacy notice", _r("privacy-notice")),
    ],
    "failed_student": [
        AuditedPage("student home, last video refused", _r("home")),
        AuditedPage("enrol my face, last video refused", _r("enrolment")),
    ],
}
