"""Enrol many people at once from a folder: pilots and the evaluation import labelled faces this way.

Layout (the paper's, and plain folders): `<folder>/<person>/train/` holding photos or a video, or
`<person>/` holding them directly. Each person becomes a student (username = the folder's name),
is put on the course and enrolled in-process (no worker); every affected course index is rebuilt
once at the end instead of once per person. Running the command records consent as given by the
operator, who must hold it from each person.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from django.conf import settings
from django.core.files import File
from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.db import transaction
from django.utils import timezone
from tqdm import tqdm

from attendance import ml
from attendance.courses.indexes import courses_index_rebuild
from attendance.courses.services import course_membership_add
from attendance.enrolment.errors import EnrolmentError
from attendance.enrolment.processing import enrolment_video_process
from attendance.enrolment.services import enrolment_create, enrolment_images_create
from attendance.models import Course, CourseMembership, EmbeddingSpace, FaceEnrolment, User
from recognition import RecognitionError

IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".bmp", ".webp"}
VIDEO_SUFFIXES = {".mp4", ".webm", ".mov", ".m4v", ".mkv", ".avi"}


@dataclass(frozen=True)
class Person:
    name: str
    images: list[Path]
    video: Path | None


def find_people(folder: Path) -> list[Person]:
    """Every `<person>` folder with photos or a video, `train/` preferred when it exists."""
    people = []
    for entry in sorted(p for p in folder.iterdir() if p.is_dir() and not p.name.startswith(".")):
        source = entry / "train" if (entry / "train").is_dir() else entry
        files = sorted(p for p in source.iterdir() if p.is_file())
        videos = [p for p in files if p.suffix.lower() in VIDEO_SUFFIXES]
        images = [p for p in files if p.suffix.lower() in IMAGE_SUFFIXES]
        people.append(Person(name=entry.name, images=images, video=videos[0] if videos else None))
    return people


def username_for(name: str) -> str:
    # Django usernames allow letters, digits and @.+-_; anything else becomes "_".
    return re.sub(r"[^\w.@+-]", "_", name.strip().lower())[:150]


def display_names(name: str) -> tuple[str, str]:
    words = [w for w in re.split(r"[_\s-]+", name) if w]
    if not words:
        return name, ""
    return words[0].capitalize(), " ".join(w.capitalize() for w in words[1:])


class Command(BaseCommand):
    help = (
        "Create a student for each <person> folder (photos or a video, in <person>/train/ or <person>/), put "
        "them on a course and enrol their faces in-process; each course index is rebuilt once at the end. "
        "Consent is recorded as given by the operator."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("folder", type=Path)
        parser.add_argument("--course", required=True, help="The course code, e.g. CS101.")
        parser.add_argument("--term", help="The course's term; needed when the code exists in several terms.")
        parser.add_argument("--create-course", action="store_true", help="Create the course if it does not exist.")
        parser.add_argument("--title", help="Title of a created course (default: the code).")
        parser.add_argument(
            "--backbone", choices=["clip", "dlib"],
            help="Embed with this backbone instead of ROLLCALL_BACKBONE (the app must then run with it too).",
        )
        parser.add_argument("--skip-enrolled", action="store_true",
                            help="Leave people who already have a ready enrolment in this embedding space.")
        parser.add_argument("--max-images", type=int, default=0, help="Use at most this many photos per person.")
        parser.add_argument("--by", help="Username of the admin doing the import (recorded as its author).")
        parser.add_argument("--no-progress", action="store_true", help="No progress bar (for logs).")

    def handle(self, *args: Any, **options: Any) -> None:
        folder: Path = options["folder"]
        if not folder.is_dir():
            raise CommandError(f"{folder} is not a folder.")
        if options["backbone"] and options["backbone"] != ml.backbone_name():
            if EmbeddingSpace.objects.filter(active=True).exists():
                raise CommandError(
                    f"This site's faces are stored in {ml.embedder_name()}: people enrolled with "
                    f"{options['backbone']} would not be recognised. Switch with `manage.py reembed` first."
                )
            settings.ROLLCALL_BACKBONE = options["backbone"]
            ml.reset()
            self.stdout.write(self.style.WARNING(
                f"Embedding with {options['backbone']}: run the app with ROLLCALL_BACKBONE={options['backbone']} "
                "to recognise these people."
            ))
        if options["max_images"] < 0:
            raise CommandError("--max-images must be 0 (all) or more.")
        course = self._course(options)
        operator = self._operator(options["by"])
        people = find_people(folder)
        if not people:
            raise CommandError(f"No <person> folders in {folder}.")
        try:
            space = ml.embedder_name()
        except RecognitionError as exc:
            raise CommandError(str(exc)) from exc

        enrolled: list[tuple[str, int]] = []
        failed: list[tuple[str, str]] = []
        skipped: list[str] = []
        students: list[User] = []
        bar = tqdm(people, desc=f"Enrolling into {course.code}", unit="person",
                   disable=options["no_progress"], file=getattr(self.stderr, "_out", None))
        for person in bar:
            bar.set_postfix_str(person.name)
            try:
                student = self._student(person)
            except EnrolmentError as exc:
                failed.append((person.name, exc.message))
                continue
            course_membership_add(course=course, student=student, rebuild_index=False)
            students.append(student)
            already = FaceEnrolment.objects.filter(student=student, status=FaceEnrolment.Status.READY, backbone=space)
            if options["skip_enrolled"] and already.exists():
                skipped.append(person.name)
                continue
            try:
                count = self._enrol(person, student, by=operator or student, max_images=options["max_images"])
            except (EnrolmentError, RecognitionError) as exc:
                failed.append((person.name, getattr(exc, "message", str(exc))))
                continue
            enrolled.append((person.name, count))
        bar.close()

        course_ids = sorted(
            set(CourseMembership.objects.filter(student__in=students).values_list("course_id", flat=True))
            | {course.pk}
        )
        courses_index_rebuild(course_ids=course_ids)
        self._report(course, enrolled, failed, skipped, course_ids)
        if failed and not enrolled and not skipped:
            raise CommandError(f"Nobody was enrolled: all {len(failed)} people failed.")

    def _course(self, options: dict[str, Any]) -> Course:
        courses = Course.objects.filter(code=options["course"])
        if options["term"]:
            courses = courses.filter(term=options["term"])
        found = list(courses[:2])
        if len(found) == 1:
            return found[0]
        if len(found) > 1:
            raise CommandError(f"Course {options['course']} exists in several terms: choose one with --term.")
        if not options["create_course"]:
            raise CommandError(f"No course {options['course']}: add --create-course to create it.")
        course = Course.objects.create(
            code=options["course"], title=options["title"] or options["course"],
            term=options["term"] or str(timezone.localdate().year),
        )
        self.stdout.write(f"Created course {course}.")
        return course

    def _operator(self, username: str | None) -> User | None:
        if not username:
            return None
        user = User.objects.filter(username=username).first()
        if user is None or not user.is_admin:
            raise CommandError(f"--by {username}: no admin account with that username.")
        return user

    def _student(self, person: Person) -> User:
        username = username_for(person.name)
        with transaction.atomic():
            student = User.objects.filter(username=username).first()
            if student is None:
                first, last = display_names(person.name)
                student = User.objects.create_user(username=username, first_name=first, last_name=last,
                                                   role=User.Role.STUDENT)
                student.set_unusable_password()  # they sign in once an admin sets a password
                student.save(update_fields=["password"])
            elif not student.is_student:
                raise EnrolmentError("not_a_student", f"{username} exists and is not a student: not enrolled.")
        return student

    def _enrol(self, person: Person, student: User, *, by: User, max_images: int) -> int:
        if person.video is not None:
            with person.video.open("rb") as handle:
                enrolment = enrolment_create(student=student, video=File(handle, name=person.video.name),
                                             consent=True, by=by, schedule=False)
            result = enrolment_video_process(enrolment_id=enrolment.pk, rebuild_indexes=False)
            if result is None or result.status != FaceEnrolment.Status.READY:
                enrolment.refresh_from_db()
                raise EnrolmentError(enrolment.error_code or "failed", enrolment.error_message or "not processed")
            return result.embeddings.count()
        images = person.images[:max_images] if max_images else person.images
        if not images:
            raise EnrolmentError("no_files", "no photos or video in the folder")
        enrolment = enrolment_images_create(student=student, images=images, by=by, consent=True,
                                            rebuild_indexes=False)
        return enrolment.embeddings.count()

    def _report(
        self, course: Course, enrolled: list[tuple[str, int]], failed: list[tuple[str, str]], skipped: list[str],
        course_ids: list[int],
    ) -> None:
        for name, reason in failed:
            self.stderr.write(self.style.ERROR(f"  {name}: {reason}"))
        embeddings = sum(count for _, count in enrolled)
        self.stdout.write(self.style.SUCCESS(
            f"Enrolled {len(enrolled)} of {len(enrolled) + len(failed) + len(skipped)} people into {course} "
            f"({embeddings} embeddings); {len(failed)} failed, {len(skipped)} skipped. "
            f"Rebuilt {len(course_ids)} course index(es)."
        ))
