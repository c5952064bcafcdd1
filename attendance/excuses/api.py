"""Excuses API: a student's request (multipart, with an optional document), the list, the decision."""

from __future__ import annotations

from typing import Any, cast

from django.shortcuts import get_object_or_404
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import serializers
from rest_framework.authentication import SessionAuthentication, TokenAuthentication
from rest_framework.exceptions import ValidationError
from rest_framework.parsers import FormParser, JSONParser, MultiPartParser
from rest_framework.permissions import IsAuthenticated
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from attendance.excuses import selectors
from attendance.excuses.services import NOTE_MAX, REASON_MAX, ExcuseError, excuse_decide, excuse_request
from attendance.models import AttendanceRecord, Excuse, User
from attendance.platform.api import Conflict, error_responses

AUTHENTICATION = [SessionAuthentication, TokenAuthentication]


class ExcuseSerializer(serializers.ModelSerializer):
    session = serializers.IntegerField(source="record.session_id", read_only=True)
    course = serializers.CharField(source="record.session.course.code", read_only=True)
    student_name = serializers.CharField(source="student.display_name", read_only=True)
    has_document = serializers.SerializerMethodField()

    class Meta:
        model = Excuse
        fields = ["id", "record", "session", "course", "student", "student_name", "record_status", "reason",
                  "has_document", "document_type", "status", "created_at", "decided_at", "note"]

    def get_has_document(self, excuse: Excuse) -> bool:
        return bool(excuse.document)


class ExcuseRequestSerializer(serializers.Serializer):
    reason = serializers.CharField(max_length=REASON_MAX)
    document = serializers.FileField(
        required=False,
        help_text=gettext_lazy("A PDF, PNG or JPEG, checked by its content."),
    )


class ExcuseDecisionSerializer(serializers.Serializer):
    decision = serializers.ChoiceField(choices=["approve", "decline"])
    note = serializers.CharField(required=False, allow_blank=True, max_length=NOTE_MAX, default="")


def _valid(serializer: serializers.Serializer) -> dict[str, Any]:
    serializer.is_valid(raise_exception=True)
    return cast(dict[str, Any], serializer.validated_data)


class ExcuseListApi(APIView):
    authentication_classes = AUTHENTICATION
    permission_classes = [IsAuthenticated]

    @extend_schema(
        operation_id="excuse_list", summary="Excuses: a student's own, or those of a lecturer's courses",
        parameters=[OpenApiParameter("status", str, enum=Excuse.Status.values, required=False)],
        responses={200: ExcuseSerializer(many=True)},
    )
    def get(self, request: Request) -> Response:
        excuses = selectors.excuses_visible_to(cast(User, request.user)).order_by("-created_at")
        wanted = request.query_params.get("status")
        if wanted:
            if wanted not in Excuse.Status.values:
                values = ", ".join(Excuse.Status.values)
                raise ValidationError({"status": _("Use one of %(values)s.") % {"values": values}})
            excuses = excuses.filter(status=wanted)
        return Response(ExcuseSerializer(excuses[:500], many=True).data)


class RecordExcuseApi(APIView):
    authentication_classes = AUTHENTICATION
    permission_classes = [IsAuthenticated]
    parser_classes = [MultiPartParser, FormParser, JSONParser]

    @extend_schema(
        operation_id="record_excuse_request", summary="Ask for one's own absence or late mark to be excused",
        request={"multipart/form-data": ExcuseRequestSerializer},
        responses={201: ExcuseSerializer, **error_responses(400, 404)},
    )
    def post(self, request: Request, pk: int) -> Response:
        user = cast(User, request.user)
        record = get_object_or_404(AttendanceRecord, pk=pk, student=user)  # another's record: not found
        data = _valid(ExcuseRequestSerializer(data=request.data))
        try:
            excuse = excuse_request(record=record, by=user, reason=data["reason"], document=data.get("document"))
        except ExcuseError as exc:
            raise ValidationError({"detail": str(exc)}) from exc
        return Response(ExcuseSerializer(excuse).data, status=201)


class ExcuseDecisionApi(APIView):
    authentication_classes = AUTHENTICATION
    permission_classes = [IsAuthenticated]

    @extend_schema(
        operation_id="excuse_decide", summary="Approve (the record becomes excused) or decline an excuse",
        request=ExcuseDecisionSerializer,
        responses={200: ExcuseSerializer, **error_responses(400, 404, 409)},
    )
    def post(self, request: Request, pk: int) -> Response:
        user = cast(User, request.user)
        excuse = get_object_or_404(selectors.excuses_visible_to(user).exclude(student=user), pk=pk)
        data = _valid(ExcuseDecisionSerializer(data=request.data))
        try:
            excuse = excuse_decide(excuse=excuse, by=user, approve=data["decision"] == "approve", note=data["note"])
        except ExcuseError as exc:
            raise Conflict(str(exc)) from exc
        return Response(ExcuseSerializer(excuse).data)
