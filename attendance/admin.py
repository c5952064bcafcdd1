from __future__ import annotations

from typing import Any

from django.contrib import admin
from django.contrib.auth.admin import UserAdmin as DjangoUserAdmin
from django.contrib.auth.forms import UserChangeForm
from django.db import transaction
from django.db.models import Count, QuerySet
from django.http import HttpRequest

from attendance.courses.services import course_membership_add, course_membership_remove, user_role_problem
from attendance.models import (
    AccessEvent,
    AttendanceChange,
    AttendanceRecord,
    AttendanceWarning,
    CalendarFeed,
    CheckinSnapshot,
    Course,
    CourseGrading,
    CourseMembership,
    Excuse,
    FaceEmbedding,
    FaceEnrolment,
    FaceRetention,
    Session,
    SsoIdentity,
    TimetableSeries,
    User,
    WarningEmail,
)
from attendance.privacy.deletion import (
    checkin_snapshots_delete,
    course_delete,
    face_embeddings_delete,
    face_enrolment_delete,
    sessions_delete,
)
from attendance.privacy.services import face_data_delete_before_account


class RollcallUserChangeForm(UserChangeForm):
    """A role change that would leave a lecturer on a roster (or a student teaching) is refused here
    in words, before the database refuses it with an error page."""

    def clean(self) -> dict[str, Any]:
        cleaned = super().clean() or {}
        role = cleaned.get("role")
        if role and self.instance.pk:
            problem = user_role_problem(user=self.instance, role=str(role),
                                        is_superuser=bool(cleaned.get("is_superuser", self.instance.is_superuser)))
            if problem:
                self.add_error("role", problem)
        return cleaned


@admin.register(User)
class UserAdmin(DjangoUserAdmin):
    form = RollcallUserChangeForm
    list_display = ("username", "first_name", "last_name", "email", "role", "student_number", "is_active")
    list_filter = ("role", "is_active", "is_staff")
    search_fields = ("username", "first_name", "last_name", "email", "student_number")
    fieldsets = (
        *(DjangoUserAdmin.fieldsets or ()),
        ("Rollcall", {"fields": ("role", "student_number")}),
    )
    add_fieldsets = (
        (None, {"classes": ("wide",), "fields": ("username", "password1", "password2")}),
        ("Rollcall", {"fields": ("role", "first_name", "last_name", "email", "student_number")}),
    )

    # Deleting an account here goes through the privacy service first: the cascade alone would drop
    # the embedding rows but leave their video and snapshot files, the course index files and every
    # web process's cached index holding the student's face (PRIVACY.md).
    def delete_model(self, request: HttpRequest, obj: User) -> None:
        face_data_delete_before_account(student=obj)
        super().delete_model(request, obj)

    def delete_queryset(self, request: HttpRequest, queryset: QuerySet[User]) -> None:
        for user in queryset:
            face_data_delete_before_account(student=user)
        super().delete_queryset(request, queryset)


class MembershipInline(admin.TabularInline):
    model = CourseMembership
    extra = 0
    fields = ("student", "joined_at")
    readonly_fields = ("joined_at",)
    autocomplete_fields = ("student",)


class SessionInline(admin.TabularInline):
    model = Session
    extra = 0
    fields = ("title", "status", "scheduled_start", "scheduled_end", "opened_at", "closed_at")
    readonly_fields = ("opened_at", "closed_at")
    show_change_link = True


@admin.register(Course)
class CourseAdmin(admin.ModelAdmin):
    list_display = ("code", "title", "term", "liveness", "student_count", "session_count", "index_version")
    list_filter = ("term", "liveness")
    search_fields = ("code", "title")
    filter_horizontal = ("lecturers",)
    readonly_fields = ("index_version", "created_at")
    inlines = (MembershipInline, SessionInline)

    def get_queryset(self, request: HttpRequest) -> QuerySet[Course]:
        return (
            super()
            .get_queryset(request)
            .annotate(_students=Count("memberships", distinct=True), _sessions=Count("sessions", distinct=True))
        )

    @admin.display(description="Students", ordering="_students")
    def student_count(self, obj: Course) -> int:
        return obj._students  # type: ignore[attr-defined]

    @admin.display(description="Sessions", ordering="_sessions")
    def session_count(self, obj: Course) -> int:
        return obj._sessions  # type: ignore[attr-defined]

    # Deleting a course, or a session or a student on its page, goes through the services: a plain
    # delete left snapshot images, the course's index files, and a removed student's face in its index.
    def delete_model(self, request: HttpRequest, obj: Course) -> None:
        course_delete(course=obj)

    def delete_queryset(self, request: HttpRequest, queryset: QuerySet[Course]) -> None:
        for course in queryset:
            course_delete(course=course)

    def save_formset(self, request: HttpRequest, form: Any, formset: Any, change: bool) -> None:
        course: Course = form.instance
        with transaction.atomic():
            if formset.model is CourseMembership:
                changed = formset.save(commit=False)  # new and changed rows; the deleted ones listed aside
                for membership in formset.deleted_objects:
                    course_membership_remove(course=course, student=membership.student)
                for membership in changed:
                    if membership.pk:  # the row's student was changed: the old one leaves
                        before = CourseMembership.objects.select_related("student").get(pk=membership.pk)
                        course_membership_remove(course=course, student=before.student)
                    course_membership_add(course=course, student=membership.student)
            elif formset.model is Session:
                changed = formset.save(commit=False)
                sessions_delete(sessions=Session.objects.filter(pk__in=[s.pk for s in formset.deleted_objects]))
                for session in changed:
                    session.save()
            else:
                formset.save()


@admin.register(CourseMembership)
class CourseMembershipAdmin(admin.ModelAdmin):
    list_display = ("student", "course", "joined_at")
    list_filter = ("course__term", "course")
    search_fields = ("student__username", "student__last_name", "course__code")
    autocomplete_fields = ("student", "course")

    # A membership is made or removed, never changed: moving one to another student or course would
    # leave the first student's face in the course's index. Both go through the services, which put
    # the face in or take it out of the index (a plain delete left it there, and in every web
    # process's cached copy).
    def get_readonly_fields(self, request: HttpRequest, obj: CourseMembership | None = None) -> tuple[str, ...]:
        return ("student", "course", "joined_at") if obj is not None else ("joined_at",)

    def save_model(self, request: HttpRequest, obj: CourseMembership, form: Any, change: bool) -> None:
        if change:
            return  # nothing of an existing membership can be changed here
        obj.pk = course_membership_add(course=obj.course, student=obj.student).pk

    def delete_model(self, request: HttpRequest, obj: CourseMembership) -> None:
        course_membership_remove(course=obj.course, student=obj.student)

    def delete_queryset(self, request: HttpRequest, queryset: QuerySet[CourseMembership]) -> None:
        for membership in queryset.select_related("course", "student"):
            course_membership_remove(course=membership.course, student=membership.student)


@admin.register(FaceEnrolment)
class FaceEnrolmentAdmin(admin.ModelAdmin):
    list_display = ("student", "status", "backbone", "embedding_count", "created_at", "finished_at", "error_code")
    list_filter = ("status", "backbone")
    search_fields = ("student__username", "student__last_name", "student__student_number")
    readonly_fields = ("progress", "attempts", "created_at", "started_at", "finished_at", "created_by")
    autocomplete_fields = ("student",)

    def get_queryset(self, request: HttpRequest) -> QuerySet[FaceEnrolment]:
        return super().get_queryset(request).select_related("student").annotate(_embeddings=Count("embeddings"))

    @admin.display(description="Embeddings", ordering="_embeddings")
    def embedding_count(self, obj: FaceEnrolment) -> int:
        return obj._embeddings  # type: ignore[attr-defined]

    # Enrolments come from the enrolment pages and the worker: here they are read, or deleted. An
    # edit could move one to another student (their withdrawal would then miss its video) or drop
    # its video from the row but not from the disk.
    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: object = None) -> bool:
        return False

    # The video file goes too, and the vectors leave the course indexes (a plain delete left both).
    def delete_model(self, request: HttpRequest, obj: FaceEnrolment) -> None:
        face_enrolment_delete(enrolment=obj)

    def delete_queryset(self, request: HttpRequest, queryset: QuerySet[FaceEnrolment]) -> None:
        for enrolment in queryset:
            face_enrolment_delete(enrolment=enrolment)


@admin.register(FaceEmbedding)
class FaceEmbeddingAdmin(admin.ModelAdmin):
    list_display = ("id", "student", "backbone", "dim", "key_id", "frame_time", "quality")
    list_filter = ("backbone", "key_id")
    search_fields = ("student__username",)
    readonly_fields = ("enrolment", "student", "backbone", "dim", "key_id", "frame_time", "quality")
    exclude = ("vector",)

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False  # embeddings come from the enrolment pipeline only

    def has_change_permission(self, request: HttpRequest, obj: object = None) -> bool:
        return False

    # Deleted, they leave the course indexes too: a plain delete left them searchable in every web
    # process's cached index.
    def delete_model(self, request: HttpRequest, obj: FaceEmbedding) -> None:
        face_embeddings_delete(embeddings=FaceEmbedding.objects.filter(pk=obj.pk))

    def delete_queryset(self, request: HttpRequest, queryset: QuerySet[FaceEmbedding]) -> None:
        face_embeddings_delete(embeddings=queryset)


class AttendanceRecordInline(admin.TabularInline):
    model = AttendanceRecord
    extra = 0
    fields = ("student", "status", "method", "confidence", "marked_at", "marked_by")
    readonly_fields = ("confidence", "marked_at", "marked_by")
    autocomplete_fields = ("student",)


@admin.register(Session)
class SessionAdmin(admin.ModelAdmin):
    list_display = ("__str__", "course", "status", "scheduled_start", "scheduled_end", "opened_at", "closed_at")
    list_filter = ("status", "course__term", "course")
    search_fields = ("title", "course__code", "course__title")
    date_hierarchy = "scheduled_start"
    readonly_fields = ("kiosk_token", "kiosk_device_hash")
    inlines = (AttendanceRecordInline,)

    # The snapshots' image files go too (a plain delete left them).
    def delete_model(self, request: HttpRequest, obj: Session) -> None:
        sessions_delete(sessions=Session.objects.filter(pk=obj.pk))

    def delete_queryset(self, request: HttpRequest, queryset: QuerySet[Session]) -> None:
        sessions_delete(sessions=queryset)


class AttendanceChangeInline(admin.TabularInline):
    model = AttendanceChange
    extra = 0
    readonly_fields = ("changed_by", "changed_at", "old_status", "new_status", "old_method", "old_marked_at",
                       "old_confidence", "new_method", "reason")

    def has_add_permission(self, request: HttpRequest, obj: object = None) -> bool:
        return False


@admin.register(AttendanceRecord)
class AttendanceRecordAdmin(admin.ModelAdmin):
    list_display = ("student", "session", "status", "method", "confidence", "liveness_score", "marked_at",
                    "marked_by")
    list_filter = ("status", "method", "session__course")
    search_fields = ("student__username", "student__last_name", "session__course__code")
    autocomplete_fields = ("student",)
    raw_id_fields = ("session",)
    inlines = (AttendanceChangeInline,)


@admin.register(CheckinSnapshot)
class CheckinSnapshotAdmin(admin.ModelAdmin):
    list_display = ("session", "taken_at")
    list_filter = ("session__course",)
    date_hierarchy = "taken_at"

    # A kept frame is evidence: read or deleted, never edited (a replaced image left the old file).
    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: object = None) -> bool:
        return False

    # The image file goes too (a plain delete left it).
    def delete_model(self, request: HttpRequest, obj: CheckinSnapshot) -> None:
        checkin_snapshots_delete(snapshots=CheckinSnapshot.objects.filter(pk=obj.pk))

    def delete_queryset(self, request: HttpRequest, queryset: QuerySet[CheckinSnapshot]) -> None:
        checkin_snapshots_delete(snapshots=queryset)


@admin.register(AccessEvent)
class AccessEventAdmin(admin.ModelAdmin):
    """The access trail: read-only, so an admin cannot remove their own lines."""

    list_display = ("at", "kind", "actor_label", "subject_label", "detail")
    list_filter = ("kind",)
    search_fields = ("actor_label", "subject_label", "detail")
    date_hierarchy = "at"

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: object = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: object = None) -> bool:
        return False


@admin.register(FaceRetention)
class FaceRetentionAdmin(admin.ModelAdmin):
    list_display = ("student", "no_course_since", "notice_sent_at")
    readonly_fields = ("student", "no_course_since", "notice_sent_at")

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False


@admin.register(CourseGrading)
class CourseGradingAdmin(admin.ModelAdmin):
    list_display = ("course", "points_present", "points_late", "points_excused", "points_absent", "warning_rate",
                    "warnings_enabled", "lecturer_digest")
    readonly_fields = ("updated_at", "updated_by")


@admin.register(AttendanceWarning)
class AttendanceWarningAdmin(admin.ModelAdmin):
    list_display = ("student", "course", "rate", "threshold", "crossed_at", "recovered_at")
    list_filter = ("course",)
    date_hierarchy = "crossed_at"
    readonly_fields = ("course", "student", "rate", "threshold", "attended", "counted", "crossed_at", "recovered_at")


@admin.register(TimetableSeries)
class TimetableSeriesAdmin(admin.ModelAdmin):
    list_display = ("course", "title", "weekday_names", "start_time", "end_time", "every_weeks", "starts_on", "ends_on")
    list_filter = ("course",)
    filter_horizontal = ("students",)


@admin.register(Excuse)
class ExcuseAdmin(admin.ModelAdmin):
    # Decisions go through the lecturer's page, which audits them; here they are only read.
    list_display = ("student", "record", "status", "record_status", "created_at", "decided_by", "decided_at")
    list_filter = ("status", "record__session__course")
    readonly_fields = ("record", "student", "status", "reason", "record_status", "document_type", "created_at",
                       "decided_by", "decided_at", "note")
    exclude = ("document",)

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False


@admin.register(WarningEmail)
class WarningEmailAdmin(admin.ModelAdmin):
    """What was sent to whom, and why one was not: read-only, the sender owns these rows."""

    list_display = ("created_at", "kind", "to_address", "subject", "status", "attempts", "sent_at")
    list_filter = ("status", "kind")
    search_fields = ("to_address", "subject", "key")

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: object = None) -> bool:
        return False


@admin.register(CalendarFeed)
class CalendarFeedAdmin(admin.ModelAdmin):
    list_display = ("owner", "course", "created_at")
    exclude = ("token",)  # the token is the feed's whole credential
    readonly_fields = ("owner", "course", "created_at")


@admin.register(SsoIdentity)
class SsoIdentityAdmin(admin.ModelAdmin):
    """Which provider subject signs in to which account. Deleting one lets the next sign-in of that
    subject match by email or student number again (when a person's provider account was re-created)."""

    list_display = ("user", "issuer", "subject", "created_at")
    search_fields = ("user__username", "user__email", "subject")
    readonly_fields = ("user", "issuer", "subject", "created_at")

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False
