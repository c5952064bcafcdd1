"""Create the first admin account if there is none, for the one-command start."""

from __future__ import annotations

import os
import secrets
from typing import Any

from django.core.management.base import BaseCommand

from attendance.models import User


class Command(BaseCommand):
    help = "Create an admin account when no admin exists (ROLLCALL_ADMIN_USERNAME / ROLLCALL_ADMIN_PASSWORD)."

    def handle(self, *args: Any, **options: Any) -> None:
        if User.objects.filter(is_superuser=True).exists():
            self.stdout.write("An admin account exists already.")
            return
        username = os.environ.get("ROLLCALL_ADMIN_USERNAME") or "admin"
        password = os.environ.get("ROLLCALL_ADMIN_PASSWORD")
        generated = not password
        password = password or secrets.token_urlsafe(12)
        User.objects.create_superuser(
            username=username, email=os.environ.get("ROLLCALL_ADMIN_EMAIL", ""), password=password,
            role=User.Role.ADMIN,
        )
        self.stdout.write(self.style.SUCCESS(f"Created admin account {username!r}."))
        if generated:
            # Printed once, here, and never stored in plain text: change it after the first sign-in.
            self.stdout.write(self.style.WARNING(f"Its generated password is: {password}"))
