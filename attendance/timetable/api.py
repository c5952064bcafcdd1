"""Timetable API: a course's series, and planning one (the same service and rules as the form)."""

from __future__ import annotations

from typing import Any, cast

from django.shortcuts import get_object_or_404
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
from drf_spectacular.utils import extend_schema
from rest_framework import serializers
from rest_framework.authentication import SessionAuthentication, TokenAuthentication
from rest_framework.exceptions import PermissionDenied, ValidationError
from rest_framework.permissions import IsAuthenticated
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from attendance import permissions
from attendance.models import Course, TimetableSeries, User
from attendance.platform.api import error_responses
from attendance.timetable import selectors
from attendance.timetable.services import SeriesSpec, TimetableError, series_save

AUTHENTICATION = [SessionAuthentication, TokenAuthentication]


class SeriesSerializer(serializers.ModelSerializer):
    planned = serializers.IntegerField(read_only=True, help_text=gettext_lazy("Sessions not yet held."))
    held = serializers.IntegerField(read_only=True)

    class Meta:
        model = TimetableSeries
        fields = ["id", "title", "weekdays", "start_time", "end_time", "every_weeks", "starts_on", "ends_on",
                  "skip_dates", "students", "planned", "held"]


class SeriesInputSerializer(serializers.Serializer):
    title = serializers.CharField(required=False, allow_blank=True, max_length=200, default="")
    weekdays = serializers.ListField(child=serializers.IntegerField(min_value=1, max_value=7), min_length=1,
                                     max_length=7, help_text=gettext_lazy("ISO weekdays, Monday 1 to Sunday 7."))
    start_time = serializers.TimeField()
    end_time = serializers.TimeField()
    every_weeks = serializers.IntegerField(min_value=1, max_value=8, default=1)
    starts_on = serializers.DateField()
    ends_on = serializers.DateField()
    skip_dates = serializers.ListField(child=serializers.DateField(), required=False, default=list, max_length=400)
    students = serializers.ListField(
        child=serializers.IntegerField(min_value=1), required=False, default=list, max_length=2000,
        help_text=gettext_lazy("Ids of the course's students; empty: the whole course."),
    )


class CourseTimetableApi(APIView):
    authentication_classes = AUTHENTICATION
    permission_classes = [IsAuthenticated]

    def _course(self, request: Request, pk: int) -> Course:
        course = get_object_or_404(Course, pk=pk)
        if not permissions.can_manage_course(request.user, course):
            raise PermissionDenied(_("Only an admin or a lecturer of this course can plan its sessions."))
        return course

    @extend_schema(operation_id="course_timetable", summary="A course's recurring classes",
                   responses={200: SeriesSerializer(many=True), **error_responses(403, 404)})
    def get(self, request: Request, pk: int) -> Response:
        course = self._course(request, pk)
        return Response(SeriesSerializer(selectors.course_series(course=course), many=True).data)

    @extend_schema(operation_id="course_timetable_plan", summary="Plan a recurring class and its sessions",
                   request=SeriesInputSerializer, responses={201: SeriesSerializer, **error_responses(400, 403, 404)})
    def post(self, request: Request, pk: int) -> Response:
        course = self._course(request, pk)
        serializer = SeriesInputSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        data = cast(dict[str, Any], serializer.validated_data)
        students = list(User.objects.filter(pk__in=data["students"]))
        if len(students) != len(set(data["students"])):
            raise ValidationError({"students": _("Some of these ids are no one's.")})
        spec = SeriesSpec(
            title=data["title"], weekdays=data["weekdays"], start_time=data["start_time"], end_time=data["end_time"],
            every_weeks=data["every_weeks"], starts_on=data["starts_on"], ends_on=data["ends_on"],
            skip_dates=data["skip_dates"], students=students,
        )
        try:
            series, _result = series_save(course=course, by=cast(User, request.user), spec=spec)
        except TimetableError as exc:
            raise ValidationError({"detail": str(exc)}) from exc
        return Response(SeriesSerializer(selectors.course_series(course=course).get(pk=series.pk)).data, status=201)
