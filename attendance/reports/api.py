"""Read-only API: courses, sessions, records and the three reports; token or session authentication."""

from __future__ import annotations

from typing import Any, cast

from django.db.models import QuerySet
from django.shortcuts import get_object_or_404
from django.utils.translation import gettext as _
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import generics, serializers
from rest_framework.authentication import SessionAuthentication, TokenAuthentication
from rest_framework.exceptions import PermissionDenied, ValidationError
from rest_framework.permissions import IsAuthenticated
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from attendance import permissions
from attendance.models import AttendanceRecord, Course, Session, User
from attendance.reports import rates
from attendance.reports import selectors as reports
from attendance.reports.forms import ReportFilterForm

AUTHENTICATION = [TokenAuthentication, SessionAuthentication]


def _user(request: Request) -> User:
    return cast(User, request.user)


def _iso(value: Any) -> str | None:
    return value.isoformat() if value else None


def _int_param(request: Request, name: str) -> int | None:
    raw = request.query_params.get(name)
    if raw in (None, ""):
        return None
    try:
        return int(raw)
    except ValueError:
        raise ValidationError(
            {name: _("%(name)s must be a whole number (an id), not %(raw)s.") % {"name": name, "raw": repr(raw)}}
        ) from None


class ReadApi(APIView):
    authentication_classes = AUTHENTICATION
    permission_classes = [IsAuthenticated]


class PersonSerializer(serializers.ModelSerializer):
    name = serializers.CharField(source="display_name", read_only=True)

    class Meta:
        model = User
        fields = ["id", "username", "name"]


class CourseSerializer(serializers.ModelSerializer):
    lecturers = PersonSerializer(many=True, read_only=True)

    class Meta:
        model = Course
        fields = ["id", "code", "title", "term", "lecturers"]


class SessionSerializer(serializers.ModelSerializer):
    # Never the kiosk token (it pairs a kiosk) nor the kiosk device's hash.
    class Meta:
        model = Session
        fields = ["id", "course", "title", "status", "scheduled_start", "scheduled_end", "opened_at", "closed_at"]


class RecordSerializer(serializers.ModelSerializer):
    student_name = serializers.CharField(source="student.display_name", read_only=True)
    student_number = serializers.CharField(source="student.student_number", read_only=True)

    class Meta:
        model = AttendanceRecord
        fields = [
            "id", "session", "student", "student_name", "student_number", "status", "method", "confidence",
            "liveness_score", "liveness_checks", "marked_at", "marked_by",
        ]


class CourseListApi(generics.ListAPIView):
    """Courses the caller may see: all (admin), taught (lecturer) or taken (student)."""

    authentication_classes = AUTHENTICATION
    serializer_class = CourseSerializer

    def get_queryset(self) -> QuerySet[Course]:
        courses = permissions.courses_visible_to(_user(self.request))
        return courses.prefetch_related("lecturers").order_by("-term", "code")


class CourseDetailApi(generics.RetrieveAPIView):
    authentication_classes = AUTHENTICATION
    serializer_class = CourseSerializer

    def get_queryset(self) -> QuerySet[Course]:
        return permissions.courses_visible_to(_user(self.request)).prefetch_related("lecturers")


@extend_schema(parameters=[
    OpenApiParameter("course", int, description="Only this course's sessions"),
    OpenApiParameter("status", str, enum=Session.Status.values),
])
class SessionListApi(generics.ListAPIView):
    authentication_classes = AUTHENTICATION
    serializer_class = SessionSerializer

    def get_queryset(self) -> QuerySet[Session]:
        sessions = permissions.sessions_visible_to(_user(self.request))
        course = _int_param(self.request, "course")
        if course is not None:
            sessions = sessions.filter(course_id=course)
        wanted = self.request.query_params.get("status")
        if wanted:
            if wanted not in Session.Status.values:
                raise ValidationError(
                    {"status": _("status must be one of %(values)s.") % {"values": ", ".join(Session.Status.values)}}
                )
            sessions = sessions.filter(status=wanted)
        return sessions.order_by("-opened_at", "-scheduled_start", "-pk")


class SessionDetailApi(generics.RetrieveAPIView):
    authentication_classes = AUTHENTICATION
    serializer_class = SessionSerializer

    def get_queryset(self) -> QuerySet[Session]:
        return permissions.sessions_visible_to(_user(self.request))


@extend_schema(parameters=[
    OpenApiParameter("session", int), OpenApiParameter("course", int), OpenApiParameter("student", int),
])
class RecordListApi(generics.ListAPIView):
    """Attendance records the caller may see; a student sees only their own."""

    authentication_classes = AUTHENTICATION
    serializer_class = RecordSerializer

    def get_queryset(self) -> QuerySet[AttendanceRecord]:
        records = permissions.records_visible_to(_user(self.request)).select_related("student")
        for param, field in (("session", "session_id"), ("course", "session__course_id"), ("student", "student_id")):
            value = _int_param(self.request, param)
            if value is not None:
                records = records.filter(**{field: value})
        return records.order_by("session_id", "student_id")


def _require_staff(request: Request) -> User:
    user = _user(request)
    if not permissions.is_staff_role(user):
        raise PermissionDenied(_("Reports are for lecturers and admins; a student's own records are at /api/records/."))
    return user


def _rate(value: float | None) -> float | None:
    return None if value is None else round(value, 4)


@extend_schema(
    parameters=[
        OpenApiParameter("from", OpenApiTypes.DATE), OpenApiParameter("to", OpenApiTypes.DATE),
        OpenApiParameter("sort", str, enum=[key for key, _label in ReportFilterForm.SORTS]),
        OpenApiParameter("threshold", int, description="Highlight rates below this percentage"),
        OpenApiParameter("low", bool, description="Only students below the threshold"),
    ],
    responses=OpenApiTypes.OBJECT,
)
class CourseReportApi(ReadApi):
    """The course report: every student with their rate and per-session status, every session's turnout."""

    def get(self, request: Request, pk: int) -> Response:
        user = _require_staff(request)
        course = get_object_or_404(permissions.courses_managed_by(user), pk=pk)
        form = ReportFilterForm(request.query_params, default_threshold=rates.low_rate_threshold())
        if not form.is_valid():
            raise ValidationError(form.errors.get_json_data())
        period, sort, threshold, only_low = form.values()
        sessions = reports.course_sessions(course=course, period=period)
        rows = reports.course_report_all_rows(
            course=course, period=period, sort=sort, threshold=threshold, only_low=only_low, sessions=sessions
        )
        return Response({
            "course": {"id": course.pk, "code": course.code, "title": course.title, "term": course.term},
            "from": _iso(period.start), "to": _iso(period.end), "threshold": threshold,
            "rate_definition": rates.RATE_DEFINITION,
            "sessions": [
                {
                    "id": s.pk, "title": s.title, "status": s.status, "held_at": _iso(s.held_at),  # type: ignore[attr-defined]
                    "attended": s.attended, "expected": s.expected, "turnout": _rate(s.turnout),  # type: ignore[attr-defined]
                }
                for s in sessions
            ],
            "students": [
                {
                    "id": row.student.pk, "username": row.student.username, "name": row.student.display_name,
                    "student_number": row.student.student_number, "attended": row.attended, "counted": row.counted,
                    "rate": _rate(row.rate), "below_threshold": row.low,
                    "points": row.points.earned, "possible_points": row.points.possible,
                    "points_share": _rate(row.points.share),
                    "statuses": {
                        str(s.pk): (None if c.code in ("none", "before") else c.code)
                        for s, c in zip(sessions, row.cells, strict=True)
                    },
                }
                for row in rows
            ],
        })


@extend_schema(responses=OpenApiTypes.OBJECT)
class SessionReportApi(ReadApi):
    """A session's students with status, time, method and confidence, and its manual changes."""

    def get(self, request: Request, pk: int) -> Response:
        user = _require_staff(request)
        session = get_object_or_404(permissions.sessions_managed_by(user).select_related("course"), pk=pk)
        rows = reports.session_report_all_rows(session=session)
        return Response({
            "session": SessionSerializer(session).data,
            "students": [
                {
                    "id": row.student.pk, "name": row.student.display_name,
                    "student_number": row.student.student_number, "on_course": row.on_course,
                    "status": row.record.status if row.record else None,
                    "method": row.record.method if row.record else None,
                    "confidence": row.record.confidence if row.record else None,
                    "liveness_score": row.record.liveness_score if row.record else None,
                    "liveness_checks": row.record.liveness_checks if row.record else [],
                    "marked_at": _iso(row.record.marked_at) if row.record else None,
                }
                for row in rows
            ],
            "changes": [
                {
                    "student": change.record.student_id, "changed_by": change.changed_by_id,
                    "changed_by_name": change.changed_by.display_name if change.changed_by else None,
                    "changed_at": _iso(change.changed_at), "old_status": change.old_status or None,
                    "new_status": change.new_status, "reason": change.reason,
                }
                for change in reports.session_changes(session=session)
            ],
        })


@extend_schema(responses=OpenApiTypes.OBJECT)
class StudentReportApi(ReadApi):
    """A student's rate per course and their sessions; a student may ask only for themselves."""

    def get(self, request: Request, pk: int) -> Response:
        user = _user(request)
        student = get_object_or_404(permissions.students_visible_to(user), pk=pk)
        courses = permissions.courses_visible_to(user)
        report = reports.student_report(student=student, courses=courses, per_page=1)
        rows = reports.student_report_all_rows(student=student, courses=courses)
        return Response({
            "student": {"id": student.pk, "name": student.display_name, "student_number": student.student_number},
            "rate_definition": rates.RATE_DEFINITION,
            "rate": _rate(report.rate), "attended": report.attended, "counted": report.counted,
            "courses": [
                {"id": c.course.pk, "code": c.course.code, "joined_at": _iso(c.joined_at), "attended": c.attended,
                 "counted": c.counted, "rate": _rate(c.rate), "below_threshold": c.low}
                for c in report.courses
            ],
            "sessions": [
                {
                    "id": row.session.pk, "course": row.session.course_id, "title": row.session.title,
                    "held_at": _iso(getattr(row.session, "held_at", None)),
                    "status": row.record.status if row.record else None,
                    "method": row.record.method if row.record else None,
                    "marked_at": _iso(row.record.marked_at) if row.record else None,
                }
                for row in rows
            ],
        })
