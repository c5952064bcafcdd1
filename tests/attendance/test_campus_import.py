"""Roster import from real CSV and XLSX files written here: the preview, every refusal, applying,
re-importing (nothing changes) and sync (absent students listed, removed only on confirmation)."""

from __future__ import annotations

import io
from datetime import date, datetime
from pathlib import Path

import pytest
from django.urls import reverse
from openpyxl import Workbook, load_workbook

from attendance.campus import uploads
from attendance.campus.importing import import_apply, import_plan
from attendance.campus.roster import RosterFileError, read_roster
from attendance.models import Course, CourseMembership, User

HEADER = ["Student number", "Name", "Email", "Course code", "Term", "Role"]


@pytest.fixture
def courses(db):
    return (Course.objects.create(code="CS101", title="Programming", term="2026-autumn"),
            Course.objects.create(code="MA200", title="Linear algebra", term="2026-autumn"))


def csv_bytes(rows: list[list[str]], *, delimiter: str = ";", bom: bool = True, header=HEADER) -> bytes:
    text = "\r\n".join(delimiter.join(r) for r in [header, *rows]) + "\r\n"
    return (("\ufeff" if bom else "") + text).encode("utf-8")


def xlsx_bytes(rows: list[list[object]], header=(*HEADER, "Joined on")) -> bytes:
    book = Workbook()
    sheet = book.active
    sheet.append(list(header))
    for row in rows:
        sheet.append(row)
    out = io.BytesIO()
    book.save(out)
    return out.getvalue()


def outcomes(plan):
    return [(r.row.line, r.outcome) for r in plan.rows]


def test_a_semicolon_csv_with_a_bom_and_accents_is_read_as_excel_writes_it(tmp_path: Path, courses):
    path = tmp_path / "roster.csv"
    path.write_bytes(csv_bytes([["s001", "Zoë Ñúñez-García", "ZOE@uni.example", "cs101", "2026-autumn", ""],
                                ["s002", "López, Ana María", "ana@uni.example", "CS101", "2026-autumn", "Student"]]))
    rows = read_roster(path.read_bytes(), path.name)
    assert [(r.student_number, r.first_name, r.last_name, r.email, r.course_code, r.role) for r in rows] == [
        ("s001", "Zoë", "Ñúñez-García", "zoe@uni.example", "CS101", "student"),
        ("s002", "Ana María", "López", "ana@uni.example", "CS101", "student"),
    ]
    plan = import_apply(rows)
    assert outcomes(plan) == [(2, "created"), (3, "created")]
    zoe = User.objects.get(student_number="s001")
    assert (zoe.first_name, zoe.role, zoe.has_usable_password()) == ("Zoë", "student", False)
    assert CourseMembership.objects.filter(course=courses[0]).count() == 2


def test_an_xlsx_with_number_and_date_cells_imports_and_keeps_the_join_date(tmp_path: Path, courses):
    path = tmp_path / "roster.xlsx"
    path.write_bytes(xlsx_bytes([[1234567, "Émile Dubois", "emile@uni.example", "MA200", "2026-autumn", "student",
                                  datetime(2026, 9, 14)],
                                 ["s9", "Ingrid Østergaard", "ingrid@uni.example", "MA200", "2026-autumn", None,
                                  None]]))
    # The date is a real date cell, as Excel stores it.
    assert load_workbook(path).active["G2"].is_date
    plan = import_apply(read_roster(path.read_bytes(), path.name))
    assert outcomes(plan) == [(2, "created"), (3, "created")]
    membership = CourseMembership.objects.get(student__student_number="1234567")
    assert membership.joined_at.date() == date(2026, 9, 14) and membership.course == courses[1]


def test_every_refusal_says_why_and_the_good_rows_still_import(courses, make_user):
    lecturer = make_user("lecturer", email="prof@uni.example", student_number="L-1")
    make_user("student", student_number="s777", email="taken@uni.example")
    data = xlsx_bytes([
        ["s100", "Bad Email", "not-an-email", "CS101", "2026-autumn", "student", None],
        ["s101", "Unknown Course", "u@uni.example", "XX999", "2026-autumn", "student", None],
        ["s102", "First Copy", "c@uni.example", "CS101", "2026-autumn", "student", None],
        ["s102", "First Copy", "c@uni.example", "CS101", "2026-autumn", "student", None],
        ["L-1", "Prof Lecturer", "prof@uni.example", "CS101", "2026-autumn", "student", None],
        ["s103", "Uses Prof Mail", "prof@uni.example", "CS101", "2026-autumn", "student", None],
        ["", "No Number", "n@uni.example", "CS101", "2026-autumn", "student", None],
        ["s104", "Bad Date", "d@uni.example", "CS101", "2026-autumn", "student", "next monday"],
        ["s105", "Bad Role", "r@uni.example", "CS101", "2026-autumn", "janitor", None],
        ["s106", "Other Mail", "taken@uni.example", "CS101", "2026-autumn", "student", None],
        ["s777", "Student Teaching", "taken@uni.example", "CS101", "2026-autumn", "lecturer", None],
        ["s108", "Good Row", "good@uni.example", "CS101", "2026-autumn", "student", None],
    ])
    plan = import_apply(read_roster(data, "r.xlsx"))
    reasons = {r.row.line: r.detail for r in plan.rows if r.outcome == "refused"}
    assert "not an email address" in reasons[2]
    assert "Unknown course XX999 (2026-autumn)" in reasons[3]
    assert "is on line 4 too" in reasons[5]
    assert "a lecturer account: only students" in reasons[6]
    assert f"belongs to {lecturer.display_name}, a lecturer" in reasons[7]
    assert "needs a student number" in reasons[8]
    assert "not a date" in reasons[9]
    assert "neither student nor lecturer" in reasons[10]
    assert "already the email of student number s777" in reasons[11]
    assert "a student cannot teach" in reasons[12]
    assert [r.row.line for r in plan.rows if r.outcome == "created"] == [4, 13]
    assert set(CourseMembership.objects.values_list("student__student_number", flat=True)) == {"s102", "s108"}
    assert not courses[0].lecturers.exists()


def test_reimporting_the_same_file_changes_nothing_and_an_edit_is_an_update(courses):
    rows = [["s1", "Ann Lee", "ann@uni.example", "CS101", "2026-autumn", "student"],
            ["s1", "Ann Lee", "ann@uni.example", "MA200", "2026-autumn", "student"],
            ["", "Pat Prof", "pat@uni.example", "CS101", "2026-autumn", "lecturer"]]
    first = import_apply(read_roster(csv_bytes(rows, delimiter=","), "r.csv"))
    assert outcomes(first) == [(2, "created"), (3, "created"), (4, "created")]
    assert courses[0].lecturers.get().email == "pat@uni.example"
    users, members = User.objects.count(), CourseMembership.objects.count()
    again = import_apply(read_roster(csv_bytes(rows, delimiter=","), "r.csv"))
    assert outcomes(again) == [(2, "unchanged"), (3, "unchanged"), (4, "unchanged")]
    assert not again.changes_anything
    assert (User.objects.count(), CourseMembership.objects.count()) == (users, members)
    rows[0][1] = rows[1][1] = "Ann Lee-Smith"
    edited = import_plan(read_roster(csv_bytes(rows, delimiter=","), "r.csv"))
    assert [r.outcome for r in edited.rows] == ["updated", "unchanged", "unchanged"]
    assert "last name Lee → Lee-Smith" in edited.rows[0].detail


def test_sync_lists_absent_students_and_removes_them_only_when_confirmed(courses, make_user):
    stays, leaves, typo = (make_user("student", student_number=n) for n in ("s1", "s2", "s3"))
    other = make_user("student", student_number="s4")
    for s in (stays, leaves, typo):
        CourseMembership.objects.create(course=courses[0], student=s)
    CourseMembership.objects.create(course=courses[1], student=other)  # not in the file's courses: untouched
    rows = read_roster(csv_bytes([[ "s1", "Stays Here", "", "CS101", "2026-autumn", "student"],
                                  ["s3", "Typo Mail", "bad@", "CS101", "2026-autumn", "student"]]), "r.csv")
    plan = import_apply(rows, sync=True, remove_absent=False)
    assert [(r.student_number, r.course) for r in plan.removals] == [("s2", "CS101")]
    assert CourseMembership.objects.count() == 4  # listed, not removed
    import_apply(rows, sync=True, remove_absent=True)
    assert set(CourseMembership.objects.values_list("student__student_number", flat=True)) == {"s1", "s3", "s4"}


@pytest.mark.parametrize(("data", "name", "message"), [
    (b"", "empty.csv", "The file is empty"),
    (b"Name;Email\nA;b@c.d\n", "r.csv", "missing: Student number, Course code, Term"),
    (b"Student number;Name;Email;Course code;Term\n", "r.csv", "no people in it"),
    ("Student number;Name\ns1;Jos\xe9".encode("latin-1"), "r.csv", "not UTF-8"),
    (b"plain text", "r.xlsx", "not an Excel workbook"),
    (b"PK\x03\x04broken", "r.xlsx", "could not be read as an Excel workbook"),
])
def test_a_file_that_cannot_be_read_is_refused_in_words(data, name, message):
    with pytest.raises(RosterFileError, match=message):
        read_roster(data, name)


def test_the_upload_survives_between_preview_and_import_and_a_changed_file_is_refused(client, admin_user, courses,
                                                                                     settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path
    client.force_login(admin_user)
    data = xlsx_bytes([["s1", "Ann Lee", "ann@uni.example", "CS101", "2026-autumn", "student", date(2026, 9, 1)],
                       ["s2", "Bo Kim", "bad-email", "CS101", "2026-autumn", "student", None]])
    response = client.post(reverse("campus-import"), {"file": _upload(data, "r.xlsx")})
    assert response.status_code == 302
    preview = client.get(response["Location"])
    page = preview.content.decode()
    assert preview.status_code == 200 and "not an email address" in page and "new account" in page
    assert not User.objects.filter(student_number="s1").exists()  # nothing written by the preview
    assert client.post(response["Location"]).status_code == 302
    assert User.objects.filter(student_number="s1").exists() and not User.objects.filter(student_number="s2").exists()
    assert client.get(response["Location"]).status_code == 404  # imported: the stored file is gone
    # A stored file whose bytes changed after the upload is not imported.
    token = uploads.upload_store(data=data, filename="r.xlsx", sync=False, by=admin_user)
    (tmp_path / "imports" / f"{token}.bin").write_bytes(data + b"tampered")
    assert client.get(reverse("campus-import-preview", args=[token])).status_code == 404


def test_a_bad_upload_gets_the_form_again_with_the_reason(client, admin_user, settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path
    client.force_login(admin_user)
    response = client.post(reverse("campus-import"), {"file": _upload(b"Name;Email\nA;b\n", "r.csv")})
    assert response.status_code == 200
    assert "missing: Student number" in response.content.decode()
    assert not (tmp_path / "imports").exists() or not any((tmp_path / "imports").iterdir())


def test_the_templates_download_and_import_as_they_are(client, admin_user, db):
    Course.objects.create(code="CS101", title="Programming", term="2026-autumn")
    client.force_login(admin_user)
    for fmt in ("csv", "xlsx"):
        response = client.get(reverse("campus-import-template", args=[fmt]))
        assert response.status_code == 200
        assert f"rollcall-roster-template.{fmt}" in response["Content-Disposition"]
        rows = read_roster(response.content, f"t.{fmt}")
        assert [(r.student_number, r.course_code, r.joined_on) for r in rows] == [("s1234567", "CS101", "2026-09-01")]
        assert import_plan(rows).rows[0].outcome in ("created", "unchanged")


def _upload(data: bytes, name: str):
    from django.core.files.uploadedfile import SimpleUploadedFile

    return SimpleUploadedFile(name, data)


def test_another_admins_upload_token_is_not_found(client, admin_user, make_user, settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path
    token = uploads.upload_store(data=b"x", filename="r.csv", sync=False, by=admin_user)
    client.force_login(make_user("admin", is_superuser=True, is_staff=True))
    assert client.get(reverse("campus-import-preview", args=[token])).status_code == 404
    assert client.post(reverse("campus-import-preview", args=[token])).status_code == 404
    assert client.get(reverse("campus-import-preview", args=["..%2F..%2Fetc"])).status_code == 404


def test_a_sync_upload_lists_who_would_go_and_removes_them_only_with_the_box_ticked(client, admin_user, courses,
                                                                                     make_user, settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path
    gone = make_user("student", student_number="s-gone", first_name="Gus", last_name="Gone")
    CourseMembership.objects.create(course=courses[0], student=gone)
    client.force_login(admin_user)
    data = csv_bytes([["s1", "Ann Lee", "ann@uni.example", "CS101", "2026-autumn", "student"]])

    def upload() -> str:
        response = client.post(reverse("campus-import"), {"file": _upload(data, "r.csv"), "sync": "on"})
        assert response.status_code == 302
        return response["Location"]

    preview_url = upload()
    page = client.get(preview_url).content.decode()
    assert "1 student would be taken off" in page and "Gus Gone" in page
    client.post(preview_url)  # the box not ticked
    assert CourseMembership.objects.filter(student=gone).exists()
    assert CourseMembership.objects.filter(student__student_number="s1").exists()
    preview_url = upload()
    response = client.post(preview_url, {"remove_absent": "on"}, follow=True)
    assert "1 removed from their course" in response.content.decode()
    assert not CourseMembership.objects.filter(student=gone).exists()


def test_an_upload_never_imported_is_deleted_after_a_day(admin_user, settings, tmp_path):
    import os
    import time

    from attendance.tasks import roster_uploads_prune

    settings.MEDIA_ROOT = tmp_path
    old = uploads.upload_store(data=b"old", filename="old.csv", sync=False, by=admin_user)
    new = uploads.upload_store(data=b"new", filename="new.csv", sync=False, by=admin_user)
    day_ago = time.time() - uploads.MAX_AGE_S - 60
    for suffix in (".bin", ".json"):
        os.utime(tmp_path / "imports" / f"{old}{suffix}", (day_ago, day_ago))
    assert roster_uploads_prune() == 2
    assert uploads.upload_load(token=old, by=admin_user) is None
    assert uploads.upload_load(token=new, by=admin_user) is not None


# --- Files over the background threshold: the worker's half (import_jobs.job_run) run here, in the
# test's process, to cover the sync removal and the stalled job; tests/attendance/test_campus_import_worker.py
# runs it in a real Celery worker.

def _big_sync_csv(extra: int) -> bytes:
    from attendance.campus import import_jobs

    rows = [["s1", "Ann Lee", "ann@uni.example", "CS101", "2026-autumn", "student"]]
    rows += [[f"x{i}", f"Pad Number{i}", f"x{i}@uni.example", "MA200", "2026-autumn", "student"] for i in range(extra)]
    data = csv_bytes(rows)
    assert import_jobs.in_background(len(data))
    return data


def _token(url: str) -> str:
    return url.rstrip("/").rsplit("/", 1)[1]


def test_a_large_sync_file_lists_and_removes_the_absent_through_the_job(client, admin_user, courses, make_user,
                                                                        settings, tmp_path):
    from attendance.campus import import_jobs

    settings.MEDIA_ROOT = tmp_path
    gone = make_user("student", student_number="s-gone", first_name="Gus", last_name="Gone")
    CourseMembership.objects.create(course=courses[0], student=gone)
    client.force_login(admin_user)
    response = client.post(reverse("campus-import"), {"file": _upload(_big_sync_csv(3000), "r.csv"), "sync": "on"})
    url = response["Location"]
    assert 'id="import-bar"' in client.get(url).content.decode()  # queued: the progress page
    assert import_jobs.job_run(token=_token(url), user_id=admin_user.pk, kind="preview") == "done"
    page = client.get(url).content.decode()
    assert "1 student would be taken off" in page and "Gus Gone" in page and not User.objects.filter(
        student_number="s1").exists()
    assert client.post(url, {"remove_absent": "on"})["Location"] == url
    assert client.post(url, {"remove_absent": "on"})["Location"] == url  # a second click queues nothing more
    job = import_jobs.job_load(_token(url))
    assert job is not None and (job["kind"], job["state"], job["remove_absent"]) == ("apply", "queued", True)
    assert import_jobs.job_run(token=_token(url), user_id=admin_user.pk, kind="apply", remove_absent=True) == "done"
    assert import_jobs.job_run(token=_token(url), user_id=admin_user.pk, kind="apply", remove_absent=True) == "done"
    response = client.get(url, follow=True)
    assert "3001 created, 0 updated, 0 unchanged, 0 refused, 1 removed from their course" in response.content.decode()
    assert not CourseMembership.objects.filter(student=gone).exists() and CourseMembership.objects.count() == 3001


def test_a_job_whose_worker_went_silent_is_reported_as_stopped_and_changes_nothing(client, admin_user, courses,
                                                                                  settings, tmp_path):
    import os
    import time

    from attendance.campus import import_jobs

    settings.MEDIA_ROOT = tmp_path
    client.force_login(admin_user)
    url = client.post(reverse("campus-import"), {"file": _upload(_big_sync_csv(3000), "r.csv")})["Location"]
    token = _token(url)
    assert client.get(reverse("campus-import-progress", args=[token])).json()["state"] == "queued"
    long_ago = time.time() - settings.CELERY_TASK_TIME_LIMIT - 120
    os.utime(tmp_path / "imports" / f"{token}.job.json", (long_ago, long_ago))
    status = client.get(reverse("campus-import-progress", args=[token])).json()
    assert (status["state"], status["error"]) == ("failed", import_jobs.STALLED)
    assert "stopped before it finished, and nothing was changed" in client.get(url).content.decode()
    # Its message delivered late: the job stays failed and nothing is written.
    assert import_jobs.job_run(token=token, user_id=admin_user.pk, kind="preview") == "failed"
    assert not User.objects.filter(student_number="s1").exists()
