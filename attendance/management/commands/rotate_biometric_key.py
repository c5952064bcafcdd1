"""Re-encrypt every stored embedding and index file under a new biometric key, then retire the old one."""

from __future__ import annotations

import getpass
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from attendance.platform.biometric import BiometricKeyError
from attendance.privacy.keys import RotationError, biometric_key_rotate


class Command(BaseCommand):
    help = (
        "Rotate the biometric key. With a key file, a new key is generated into it; with ROLLCALL_BIOMETRIC_KEY, "
        "put the new key first (<new>,<old>). Resumable: interrupted, run it again."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--batch", type=int, default=500, help="Embeddings re-encrypted per transaction.")

    def handle(self, *args: Any, **options: Any) -> None:
        def progress(done: int) -> None:
            self.stdout.write(f"  {done} embeddings re-encrypted")

        try:
            result = biometric_key_rotate(
                by_label=f"manage.py rotate_biometric_key ({getpass.getuser()})",
                batch=max(1, options["batch"]), after_batch=progress,
            )
        except (RotationError, BiometricKeyError) as exc:
            raise CommandError(str(exc)) from exc
        self.stdout.write(self.style.SUCCESS(
            f"Every embedding ({result.embeddings_resealed} re-encrypted) and index ({result.indexes_rebuilt} "
            f"rebuilt) is under key {result.new_key_id}."
        ))
        if result.old_keys_left_in_setting:
            self.stdout.write(
                f"Now remove the old key(s) {', '.join(result.retired_key_ids)} from ROLLCALL_BIOMETRIC_KEY and "
                "restart: nothing needs them any more."
            )
        elif result.retired_key_ids:
            self.stdout.write(f"Retired key(s) {', '.join(result.retired_key_ids)}: removed from the key file.")
