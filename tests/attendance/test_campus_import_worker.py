"""A 10,000-row XLSX roster previewed and imported by a real Celery worker (Redis broker, the test
PostgreSQL), its progress read through the page's progress URL while the job is under way.

To see the job between its start and its end without depending on how fast this machine is, the
test holds a real PostgreSQL lock that the worker must wait for at a known point: the courses table
while it plans (the file is read by then), the memberships table while it writes (the accounts are
written by then, inside the import's still open transaction). The counters seen there are exact.
Timeouts below only stop a hung worker; nothing is asserted about time.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import psycopg
import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.db import connection
from django.test import Client
from django.urls import reverse

from attendance.campus import import_jobs
from attendance.models import Course, CourseMembership, User
from tests.attendance.test_campus_import_scale import _xlsx

pytestmark = pytest.mark.slow

ROWS = 10_000


def _lock_connection() -> psycopg.Connection:
    db = connection.settings_dict
    return psycopg.connect(host=db["HOST"], port=db["PORT"], user=db["USER"], dbname=db["NAME"])


class Import:
    def __init__(self, client: Client, worker: Any, data: bytes, name: str = "big.xlsx") -> None:
        self.client, self.worker = client, worker
        response = client.post(reverse("campus-import"), {"file": SimpleUploadedFile(name, data)})
        assert response.status_code == 302, response.content.decode()[:2000]
        self.url = response["Location"]
        self.token = self.url.rstrip("/").rsplit("/", 1)[1]
        self.progress_url = reverse("campus-import-progress", args=[self.token])
        self.seen: list[dict[str, Any]] = []

    def until(self, done: Callable[[dict[str, Any]], bool], what: str, limit_s: float = 300) -> dict[str, Any]:
        deadline = time.monotonic() + limit_s  # only against a hung worker
        while time.monotonic() < deadline:
            response = self.client.get(self.progress_url)
            assert response.status_code == 200
            status = response.json()
            self.seen.append(status)
            if done(status):
                return status
            assert status["state"] != "failed" or what == "failed", status
            time.sleep(0.05)
        raise AssertionError(f"no {what}: last {self.seen[-3:]}\n{self.worker.log()[-3000:]}")

    def confirm(self, **form: str) -> None:
        response = self.client.post(self.url, form)
        assert response.status_code == 302 and response["Location"] == self.url


@pytest.fixture
def admin_client(celery_worker_process, make_user) -> tuple[Client, Any]:
    for c in range(20):
        Course.objects.create(code=f"BIG{c}", title="Big course", term="2026-autumn")
    client = Client()
    client.force_login(make_user("admin", is_superuser=True, is_staff=True))
    return client, celery_worker_process


def test_ten_thousand_rows_are_previewed_and_imported_by_a_worker_with_progress(admin_client):
    client, worker = admin_client
    data = _xlsx(ROWS, 20)
    assert import_jobs.in_background(len(data))
    lock = _lock_connection()
    try:
        lock.execute("LOCK TABLE attendance_course IN ACCESS EXCLUSIVE MODE")
        job = Import(client, worker, data)
        planning = job.until(lambda s: s["stage"] == "planning", "planning stage")
        # The whole file is read, no row is planned yet: the worker waits for the courses table.
        assert (planning["state"], planning["read"], planning["total"], planning["planned"]) == (
            "running", ROWS, ROWS, 0)
        assert planning["label"] == "Checking every row" and 0 < planning["percent"] < 100
        assert f"Rows read: {ROWS:,} of {ROWS:,}" in planning["counts"]
        page = client.get(job.url).content.decode()
        assert 'role="status"' in page and '<progress id="import-bar"' in page and "Checking every row" in page
        lock.rollback()
        done = job.until(lambda s: s["state"] == "done", "finished preview")
        assert (done["planned"], done["percent"]) == (ROWS, 100)
        preview = client.get(job.url).content.decode()
        assert '<span class="stat-value">10000</span>' in preview and "new account" in preview
        assert not User.objects.filter(role="student").exists()  # the preview writes nothing

        lock.execute("LOCK TABLE attendance_coursemembership IN SHARE MODE")
        job.confirm()
        writing = job.until(lambda s: s["stage"] == "writing" and s["written"] == ROWS, "accounts written")
        # The accounts are written inside the open transaction, the memberships wait for the lock.
        assert (writing["state"], writing["write_total"], writing["planned"]) == ("running", 2 * ROWS, ROWS)
        assert f"written: {ROWS:,} of {2 * ROWS:,}" in writing["counts"]
        assert not User.objects.filter(role="student").exists()  # not committed: nobody else sees them
        lock.rollback()
    finally:
        lock.close()
    job.until(lambda s: s["state"] == "done", "finished import")
    outcome = client.get(job.url, follow=True)
    assert outcome.redirect_chain[-1][0] == reverse("campus-memberships")
    assert f"Imported big.xlsx: {ROWS} created, 0 updated, 0 unchanged, 0 refused." in outcome.content.decode()
    assert User.objects.filter(role="student").count() == ROWS and CourseMembership.objects.count() == ROWS
    assert client.get(job.progress_url).status_code == 404  # the upload and its job are gone

    again = Import(client, worker, data)
    again.until(lambda s: s["state"] == "done", "second preview")
    preview = client.get(again.url).content.decode()
    assert '<span class="stat-value">10000</span>' in preview and "Nothing to change: confirm" in preview
    again.confirm()
    again.until(lambda s: s["state"] == "done", "second import")
    outcome = client.get(again.url, follow=True).content.decode()
    assert f"Imported big.xlsx: 0 created, 0 updated, {ROWS} unchanged, 0 refused." in outcome
    assert User.objects.filter(role="student").count() == ROWS and CourseMembership.objects.count() == ROWS


def test_a_failure_in_the_middle_of_the_import_writes_nothing_and_says_so(admin_client):
    client, worker = admin_client
    # A large file that cannot be read: the worker says why, in words, on the same page.
    bad = ("Name;Email\n" + "".join(f"Student Number{i};s{i}@uni.example\n" for i in range(5000))).encode()
    assert import_jobs.in_background(len(bad))
    unreadable = Import(client, worker, bad, "bad.csv")
    unreadable.until(lambda s: s["state"] == "failed", "failed")
    page = client.get(unreadable.url).content.decode()
    assert "missing: Student number" in page and "Upload a file again" in page

    job = Import(client, worker, _xlsx(ROWS, 20))
    job.until(lambda s: s["state"] == "done", "finished preview")
    with connection.cursor() as cursor:  # the database refuses the memberships, after the accounts are in
        cursor.execute("CREATE FUNCTION test_refuse() RETURNS trigger LANGUAGE plpgsql AS "
                       "$$ BEGIN RAISE EXCEPTION 'could not extend file: No space left on device'; END $$")
        cursor.execute("CREATE TRIGGER test_refuse BEFORE INSERT ON attendance_coursemembership "
                       "FOR EACH ROW EXECUTE FUNCTION test_refuse()")
    try:
        job.confirm()
        failed = job.until(lambda s: s["state"] == "failed", "failed")
    finally:
        with connection.cursor() as cursor:
            cursor.execute("DROP TRIGGER test_refuse ON attendance_coursemembership; DROP FUNCTION test_refuse()")
    assert failed["written"] == ROWS and failed["write_total"] == 2 * ROWS  # it stopped half-way through
    assert failed["error"] == import_jobs.APPLY_FAILED
    assert not User.objects.filter(role="student").exists() and not CourseMembership.objects.exists()
    page = client.get(job.url).content.decode()
    assert "nothing was changed" in page and "No space left" not in page  # the database's words stay in the log
    assert '<span class="stat-value">10000</span>' in page  # the preview is still there: nothing lost

    job.confirm()  # tried again once the database takes the rows
    job.until(lambda s: s["state"] == "done", "finished import")
    assert "10000 created" in client.get(job.url, follow=True).content.decode()
    assert User.objects.filter(role="student").count() == ROWS and CourseMembership.objects.count() == ROWS
