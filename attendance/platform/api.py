"""What every feature's API shares: the error types and how errors are described in the schema."""

from __future__ import annotations

import logging
from typing import Any

from django.utils.translation import gettext, gettext_lazy
from drf_spectacular.utils import OpenApiResponse
from rest_framework import serializers, status
from rest_framework.exceptions import APIException


class Conflict(APIException):
    status_code = status.HTTP_409_CONFLICT
    default_code = "conflict"


class PayloadTooLarge(APIException):
    status_code = status.HTTP_413_REQUEST_ENTITY_TOO_LARGE
    default_code = "too_large"


class ServiceUnavailable(APIException):
    status_code = status.HTTP_503_SERVICE_UNAVAILABLE
    default_code = "unavailable"


MODELS_UNAVAILABLE = gettext_lazy(
    "Face recognition is not available on this server right now; your administrator has been told. "
    "Try again in a few minutes."
)

KEY_UNAVAILABLE = gettext_lazy(
    "Face recognition is stopped on this server right now; your administrator has been told. Attendance records, "
    "marking by hand and reports still work, and no face data has been deleted."
)

logger = logging.getLogger("attendance.models_unavailable")


def models_unavailable(user: Any, exc: Exception) -> ServiceUnavailable:
    """The 503 for a model that cannot load: the operator's detail (setting, path, checksum, URL)
    for an admin and the log; a plain sentence for everyone else (lecturers, kiosks, students)."""
    from attendance.platform.biometric import BiometricKeyError

    logger.error("recognition models unavailable: %s", exc)
    is_admin = bool(getattr(user, "is_authenticated", False) and getattr(user, "is_admin", False))
    plain = KEY_UNAVAILABLE if isinstance(exc, BiometricKeyError) else MODELS_UNAVAILABLE
    # The operator's detail stays in English, as the log has it.
    detail = (gettext("%(message)s Detail for administrators: %(detail)s") % {"message": plain, "detail": exc}
              if is_admin else str(plain))
    return ServiceUnavailable(detail)


class DetailSerializer(serializers.Serializer):
    detail = serializers.CharField()


def error_responses(*codes: int) -> dict[int, OpenApiResponse]:
    descriptions = {
        400: "The request is malformed; the message says what to send.",
        403: "Not a lecturer of this course, an admin, or a valid kiosk token of this open session.",
        404: "No such session or student.",
        409: "The session is not open.",
        413: "The image is larger than ROLLCALL_CHECKIN_MAX_IMAGE_MB.",
        429: "Too many snapshots for this session from this sender; retry after Retry-After seconds.",
        503: "The recognition models could not be loaded.",
    }
    return {code: OpenApiResponse(DetailSerializer, description=descriptions[code]) for code in codes}
