"""API tokens: a person obtains and revokes their own; an admin revokes anyone's."""

from __future__ import annotations

from typing import Any, cast

from django.shortcuts import get_object_or_404
from django.utils.translation import gettext
from drf_spectacular.utils import extend_schema
from rest_framework import status
from rest_framework.authentication import SessionAuthentication, TokenAuthentication
from rest_framework.authtoken.models import Token
from rest_framework.authtoken.views import ObtainAuthToken
from rest_framework.exceptions import PermissionDenied, Throttled, ValidationError
from rest_framework.permissions import AllowAny, IsAuthenticated
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from attendance import permissions
from attendance.models import User
from attendance.platform import login_limit

AUTHENTICATION = [TokenAuthentication, SessionAuthentication]


def _user(request: Request) -> User:
    return cast(User, request.user)


class ReadApi(APIView):
    authentication_classes = AUTHENTICATION
    permission_classes = [IsAuthenticated]


class TokenApi(ObtainAuthToken):
    """POST username and password for your API token (the same one until revoked); DELETE revokes it.

    It takes a password like the sign-in page, so failed attempts count against the same limit (429).
    """

    authentication_classes = AUTHENTICATION
    permission_classes = [AllowAny]

    def post(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        username = str(request.data.get("username", "")) if hasattr(request.data, "get") else ""
        block = login_limit.login_blocked(request, username)
        if block is not None:
            raise Throttled(wait=block.retry_after, detail=block.message())
        serializer = self.get_serializer(data=request.data)
        if not serializer.is_valid():
            login_limit.login_failed(request, username)
            raise ValidationError(serializer.errors)
        token, _ = Token.objects.get_or_create(user=serializer.validated_data["user"])
        return Response({"token": token.key})

    def delete(self, request: Request) -> Response:
        if not request.user.is_authenticated:
            return Response({"detail": gettext("Sign in or send your token to revoke it.")},
                            status=status.HTTP_401_UNAUTHORIZED)
        Token.objects.filter(user=request.user).delete()
        return Response(status=status.HTTP_204_NO_CONTENT)


@extend_schema(request=None, responses={204: None})
class UserTokenRevokeApi(ReadApi):
    """An admin revokes a person's API token: integrations using it stop working at once."""

    def delete(self, request: Request, pk: int) -> Response:
        if not permissions.can_revoke_tokens(_user(request)):
            raise PermissionDenied(gettext("Only an admin can revoke another person's API token."))
        person = get_object_or_404(User, pk=pk)
        deleted, _ = Token.objects.filter(user=person).delete()
        if not deleted:
            return Response({"detail": gettext("%(name)s has no API token.") % {"name": person.display_name}},
                            status=status.HTTP_404_NOT_FOUND)
        return Response(status=status.HTTP_204_NO_CONTENT)
