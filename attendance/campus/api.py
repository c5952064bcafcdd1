"""Provisioning API for the university's own scripts: courses, people and memberships in bulk.

Admin tokens only (no session cookie: a script, not a browser). Every call is idempotent: courses
are matched by code and term, students by student number, lecturers by email, memberships by
student number and course, so sending the same batch twice changes nothing the second time. A
batch is all or nothing: if any item is refused, none is written and each refusal is listed.
Each `detail` is in the request's language (Accept-Language); `outcome` is a code and stays English.
"""

from __future__ import annotations

from typing import Any

from django.db import transaction
from django.utils.translation import gettext_lazy as _
from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework import serializers
from rest_framework.authentication import TokenAuthentication
from rest_framework.permissions import BasePermission
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from attendance.campus.importing import REFUSED, ImportPlan, import_apply, import_plan
from attendance.campus.provisioning import course_upsert_many
from attendance.campus.roster import RosterRow
from attendance.platform.api import DetailSerializer


class IsAdminRole(BasePermission):
    message = _("Provisioning is for admin tokens only.")

    def has_permission(self, request: Request, view: object) -> bool:
        user = request.user
        return bool(user and user.is_authenticated and user.is_active and getattr(user, "is_admin", False))


class ProvisionApi(APIView):
    authentication_classes = [TokenAuthentication]
    permission_classes = [IsAdminRole]


class ItemResultSerializer(serializers.Serializer):
    index = serializers.IntegerField(help_text=_("The item's position in the request, from 0."))
    outcome = serializers.ChoiceField(choices=["created", "updated", "unchanged", "refused"])
    detail = serializers.CharField()


class BatchResultSerializer(serializers.Serializer):
    created = serializers.IntegerField()
    updated = serializers.IntegerField()
    unchanged = serializers.IntegerField()
    refused = serializers.IntegerField()
    removed = serializers.IntegerField(required=False)
    results = ItemResultSerializer(many=True)


class CourseItemSerializer(serializers.Serializer):
    code = serializers.CharField(max_length=32)
    term = serializers.CharField(max_length=32)
    title = serializers.CharField(max_length=200)
    lecturers = serializers.ListField(child=serializers.EmailField(), required=False,
                                      help_text=_("Emails of the lecturers who teach it (added, never removed)."))


class PersonItemSerializer(serializers.Serializer):
    role = serializers.ChoiceField(choices=["student", "lecturer"], default="student")
    student_number = serializers.CharField(max_length=32, required=False, allow_blank=True, default="")
    first_name = serializers.CharField(max_length=150, required=False, allow_blank=True, default="")
    last_name = serializers.CharField(max_length=150, required=False, allow_blank=True, default="")
    email = serializers.EmailField(required=False, allow_blank=True, default="")
    active = serializers.BooleanField(required=False, allow_null=True, default=None,
                                      help_text=_("false deactivates the account (a leaver), true reactivates it; "
                                                  "left out: unchanged."))


class MembershipItemSerializer(serializers.Serializer):
    student_number = serializers.CharField(max_length=32)
    course_code = serializers.CharField(max_length=32)
    term = serializers.CharField(max_length=32)


def _batch(name: str, item: serializers.Serializer, sync: bool = False) -> type[serializers.Serializer]:
    fields: dict[str, Any] = {name: serializers.ListField(child=item, max_length=50_000, allow_empty=False)}
    if sync:
        fields["sync"] = serializers.BooleanField(
            default=False, help_text=_("Also remove the memberships of these courses that the batch does not list."))
    return type(f"{name.title()}Batch", (serializers.Serializer,), fields)


CourseBatch = _batch("courses", CourseItemSerializer())
PersonBatch = _batch("people", PersonItemSerializer())
MembershipBatch = _batch("memberships", MembershipItemSerializer(), sync=True)
RESPONSES = {200: BatchResultSerializer, 400: BatchResultSerializer, 401: OpenApiResponse(DetailSerializer),
             403: OpenApiResponse(DetailSerializer, description="Not an admin's token.")}


def _answer(plan: ImportPlan, rows: list[RosterRow], *, removed: int | None = None) -> Response:
    index_of = {row.line: i for i, row in enumerate(rows)}
    body: dict[str, Any] = {**plan.counts(), "results": [
        {"index": index_of[r.row.line], "outcome": r.outcome, "detail": r.detail} for r in plan.rows]}
    if removed is not None:
        body["removed"] = removed
    return Response(body, status=400 if body["refused"] else 200)


def _run(rows: list[RosterRow], *, require_course: bool, sync: bool = False) -> Response:
    plan = import_plan(rows, sync=sync, require_course=require_course)
    if plan.counts()[REFUSED]:
        return _answer(plan, rows, removed=0 if sync else None)
    plan = import_apply(rows, sync=sync, remove_absent=sync, require_course=require_course)
    return _answer(plan, rows, removed=len(plan.removals) if sync else None)


class CourseProvisionApi(ProvisionApi):
    @extend_schema(operation_id="provision_courses", summary="Create or update courses by code and term",
                   request=CourseBatch, responses=RESPONSES)
    def post(self, request: Request) -> Response:
        batch = CourseBatch(data=request.data)
        batch.is_valid(raise_exception=True)
        with transaction.atomic():
            results = course_upsert_many(items=batch.validated_data["courses"])
            refused = [r for r in results if r["outcome"] == REFUSED]
            if refused:
                transaction.set_rollback(True)
        counts = {o: sum(r["outcome"] == o for r in results) for o in ("created", "updated", "unchanged", REFUSED)}
        return Response({**counts, "results": results}, status=400 if refused else 200)


class PersonProvisionApi(ProvisionApi):
    @extend_schema(operation_id="provision_people",
                   summary="Create or update people: students by student number, lecturers by email",
                   request=PersonBatch, responses=RESPONSES)
    def post(self, request: Request) -> Response:
        batch = PersonBatch(data=request.data)
        batch.is_valid(raise_exception=True)
        rows = [RosterRow(line=i, student_number=p["student_number"].strip(), first_name=p["first_name"].strip(),
                          last_name=p["last_name"].strip(), email=p["email"].strip().lower(), course_code="",
                          term="", role=p["role"], joined_on="", active=p["active"])
                for i, p in enumerate(batch.validated_data["people"])]
        return _run(rows, require_course=False)


class MembershipProvisionApi(ProvisionApi):
    @extend_schema(operation_id="provision_memberships",
                   summary="Put students on courses by student number and course code + term",
                   request=MembershipBatch, responses=RESPONSES)
    def post(self, request: Request) -> Response:
        batch = MembershipBatch(data=request.data)
        batch.is_valid(raise_exception=True)
        rows = [RosterRow(line=i, student_number=m["student_number"].strip(), first_name="", last_name="",
                          email="", course_code=m["course_code"].strip().upper(), term=m["term"].strip(),
                          role="student", joined_on="")
                for i, m in enumerate(batch.validated_data["memberships"])]
        return _run(rows, require_course=True, sync=batch.validated_data["sync"])
