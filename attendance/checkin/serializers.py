"""The check-in API's serializers: a snapshot's answer, the live list, a mark."""

from __future__ import annotations

from django.utils.translation import gettext_lazy
from rest_framework import serializers

from attendance.checkin import services as checkin_service
from attendance.models import AttendanceRecord
from attendance.sessions.api import SessionInfoSerializer


class CheckinChallengeSerializer(serializers.Serializer):
    prompt = serializers.CharField(help_text=gettext_lazy('What to show, e.g. "Turn your head to your left".'))
    direction = serializers.ChoiceField(
        choices=["left", "right"], help_text=gettext_lazy("The student's own left or right.")
    )
    seconds_left = serializers.FloatField(help_text=gettext_lazy("Time left to answer."))
    seconds = serializers.FloatField(help_text=gettext_lazy("Time given to answer in all."))


class CheckinFaceSerializer(serializers.Serializer):
    box = serializers.ListField(
        child=serializers.IntegerField(), min_length=4, max_length=4,
        help_text=gettext_lazy("x, y, width, height in pixels of the processed image (see width and height)."),
    )
    outcome = serializers.ChoiceField(
        choices=checkin_service.Outcome.ALL,
        help_text=gettext_lazy("unknown: nobody enrolled on the course; doubtful: a weak match, for the lecturer to "
        "confirm; confirming: recognised, waiting for more snapshots; marked: this snapshot marked the "
        "student; recorded: the student already has a record in this session; challenge: answer the head-turn "
        "prompt in `challenge`; challenge_failed: the prompt was not answered, a new one follows; not_live: "
        "possible photo or screen, never marked."),
    )
    student_id = serializers.IntegerField(allow_null=True, help_text=gettext_lazy("Null for a kiosk."))
    name = serializers.CharField(help_text=gettext_lazy(
        'The student\'s name, or "Unknown". A kiosk gets a name only for a face this snapshot marked; '
        "empty otherwise."
    ))
    distance = serializers.FloatField(
        allow_null=True, help_text=gettext_lazy("L2 distance to the student's nearest face (0-2).")
    )
    votes = serializers.IntegerField()
    confirmations = serializers.IntegerField(help_text=gettext_lazy("Agreeing snapshots within the window so far."))
    record_status = serializers.CharField(allow_null=True)
    liveness_score = serializers.FloatField(
        allow_null=True, help_text=gettext_lazy(
            "This snapshot's passive live score, 0-1; null with liveness off and for a face that cannot be "
            "marked now (unknown, already recorded or doubtful), which is not scored."
        )
    )
    challenge = CheckinChallengeSerializer(
        allow_null=True, help_text=gettext_lazy('The head turn to answer now (outcome "challenge"), else null.')
    )
    reason = serializers.CharField(
        help_text=gettext_lazy("Why the face is not live (not_live, challenge_failed), else empty.")
    )


class CheckinResultSerializer(serializers.Serializer):
    width = serializers.IntegerField()
    height = serializers.IntegerField()
    faces = CheckinFaceSerializer(many=True)
    confirmations_needed = serializers.IntegerField()
    marked = serializers.ListField(
        child=serializers.IntegerField(), help_text=gettext_lazy("Students this snapshot marked (empty for a kiosk).")
    )
    processing_ms = serializers.IntegerField()
    liveness = serializers.CharField(
        help_text=gettext_lazy(
            "The liveness policy applied: off, passive or passive+challenge; unavailable when the policy asks "
            "for liveness but its models cannot be loaded here (faces are then marked as with liveness off)."
        )
    )
    notice = serializers.CharField(help_text=gettext_lazy("A sentence to show the lecturer or the kiosk, or empty."))


class RosterEntrySerializer(serializers.Serializer):
    student_id = serializers.IntegerField()
    name = serializers.CharField()
    student_number = serializers.CharField()
    face_enrolled = serializers.BooleanField()
    status = serializers.ChoiceField(choices=AttendanceRecord.Status.choices, allow_null=True)
    method = serializers.ChoiceField(choices=AttendanceRecord.Method.choices, allow_null=True)
    marked_at = serializers.DateTimeField(allow_null=True)
    confidence = serializers.FloatField(allow_null=True, help_text=gettext_lazy("Recognition distance of a face mark."))


class DoubtfulSerializer(serializers.Serializer):
    student_id = serializers.IntegerField()
    name = serializers.CharField()
    distance = serializers.FloatField()
    seen_at = serializers.FloatField(help_text=gettext_lazy("Unix time of the last sighting."))


class NotLiveSerializer(serializers.Serializer):
    student_id = serializers.IntegerField()
    name = serializers.CharField()
    reason = serializers.CharField(help_text=gettext_lazy("Why liveness failed."))
    seen_at = serializers.FloatField(help_text=gettext_lazy("Unix time of the last failure."))


class SessionStateSerializer(serializers.Serializer):
    session = SessionInfoSerializer()
    students = RosterEntrySerializer(many=True)
    doubtful = DoubtfulSerializer(many=True)
    not_live = NotLiveSerializer(
        many=True, help_text=gettext_lazy('Faces that failed liveness lately: "possible photo or screen of <name>".')
    )
    counts = serializers.DictField(child=serializers.IntegerField())


class MarkSerializer(serializers.Serializer):
    student = serializers.IntegerField(help_text=gettext_lazy("The student's id."))
    status = serializers.ChoiceField(choices=AttendanceRecord.Status.choices)
    reason = serializers.CharField(required=False, allow_blank=True, default="", max_length=500)
