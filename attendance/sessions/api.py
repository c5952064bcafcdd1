"""Sessions API: start a session now, open a scheduled one, close it."""

from __future__ import annotations

from typing import cast

from django.shortcuts import get_object_or_404
from django.utils.translation import gettext, gettext_lazy
from drf_spectacular.utils import extend_schema, inline_serializer
from rest_framework import serializers
from rest_framework.authentication import SessionAuthentication, TokenAuthentication
from rest_framework.exceptions import PermissionDenied
from rest_framework.permissions import IsAuthenticated
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from attendance import permissions
from attendance.models import Course, Session, User
from attendance.platform.api import Conflict, error_responses
from attendance.sessions.selectors import session_info
from attendance.sessions.services import (
    SessionError,
    session_close,
    session_open,
)

AUTHENTICATION = [SessionAuthentication, TokenAuthentication]


def session_or_404(pk: int) -> Session:
    return get_object_or_404(Session.objects.select_related("course"), pk=pk)


def require_manager(request: Request, session: Session) -> User:
    if not permissions.can_manage_session(request.user, session):
        raise PermissionDenied(gettext("Only an admin or a lecturer of this course can do this."))
    return cast(User, request.user)


class SessionInfoSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    course_id = serializers.IntegerField()
    title = serializers.CharField()
    status = serializers.ChoiceField(choices=Session.Status.choices)
    opened_at = serializers.DateTimeField(allow_null=True)
    closed_at = serializers.DateTimeField(allow_null=True)
    starts_at = serializers.DateTimeField(allow_null=True)
    ends_at = serializers.DateTimeField(
        allow_null=True, help_text=gettext_lazy("The planned end, when the session closes itself; null if unplanned.")
    )
    late_after_minutes = serializers.IntegerField()
    arrival_status = serializers.ChoiceField(
        choices=["present", "late"],
        help_text=gettext_lazy("What a student arriving now is marked: late after the course's minutes."),
    )


class CourseSessionStartApi(APIView):
    authentication_classes = AUTHENTICATION
    permission_classes = [IsAuthenticated]

    @extend_schema(
        operation_id="course_session_start",
        summary="Start a new session of a course now",
        request=inline_serializer("SessionStart", {"title": serializers.CharField(required=False, max_length=200)}),
        responses={201: SessionInfoSerializer, **error_responses(403, 404)},
    )
    def post(self, request: Request, pk: int) -> Response:
        course = get_object_or_404(Course, pk=pk)
        if not permissions.can_manage_course(request.user, course):
            raise PermissionDenied(gettext("Only an admin or a lecturer of this course can start its sessions."))
        title = str(request.data.get("title", "")) if hasattr(request.data, "get") else ""
        session = session_open(course=course, by=cast(User, request.user), title=title)
        return Response(SessionInfoSerializer(session_info(session)).data, status=201)


class SessionOpenApi(APIView):
    authentication_classes = AUTHENTICATION
    permission_classes = [IsAuthenticated]

    @extend_schema(
        operation_id="session_open", summary="Open a scheduled session", request=None,
        responses={200: SessionInfoSerializer, **error_responses(403, 404, 409)},
    )
    def post(self, request: Request, pk: int) -> Response:
        session = session_or_404(pk)
        user = require_manager(request, session)
        try:
            session = session_open(course=session.course, session=session, by=user)
        except SessionError as exc:
            raise Conflict(str(exc)) from exc
        return Response(SessionInfoSerializer(session_info(session)).data)


class SessionCloseApi(APIView):
    authentication_classes = AUTHENTICATION
    permission_classes = [IsAuthenticated]

    @extend_schema(
        operation_id="session_close",
        summary="Close a session",
        description="Check-ins stop, the kiosk link dies, and every student without a record is marked absent.",
        request=None,
        responses={
            200: inline_serializer("SessionClosed", {"session": SessionInfoSerializer(),
                                                     "marked_absent": serializers.IntegerField()}),
            **error_responses(403, 404, 409),
        },
    )
    def post(self, request: Request, pk: int) -> Response:
        session = session_or_404(pk)
        user = require_manager(request, session)
        try:
            result = session_close(session=session, by=user)
        except SessionError as exc:
            raise Conflict(str(exc)) from exc
        info = SessionInfoSerializer(session_info(result.session)).data
        return Response({"session": info, "marked_absent": result.marked_absent})
