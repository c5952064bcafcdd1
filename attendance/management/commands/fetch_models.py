"""Put the model files the app needs in place: the YuNet face detector (checked by sha256) and, for
the CLIP backbone, its weights. Offline, it says what is missing and where to copy it."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError, CommandParser

from attendance import ml
from recognition import YUNET_SHA256, ModelUnavailableError, resolve_detector_model
from recognition.weights import sha256_of


class Command(BaseCommand):
    help = (
        "Fetch the face detector (and the CLIP weights when ROLLCALL_BACKBONE=clip) into ROLLCALL_MODEL_DIR, "
        "checking their checksums. Files already in place are only verified."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--offline", action="store_true", help="Only check what is in place; download nothing.")

    def handle(self, *args: Any, **options: Any) -> None:
        offline = bool(options["offline"])
        problems: list[str] = []
        for check in (self._detector, self._embedder):
            try:
                check(offline=offline)
            except ModelUnavailableError as exc:
                problems.append(str(exc))
                self.stderr.write(self.style.ERROR(str(exc)))
        if problems:
            raise CommandError(
                f"{len(problems)} model file(s) missing; recognition will not work until they are in place."
            )

    def _detector(self, *, offline: bool) -> None:
        configured = Path(settings.ROLLCALL_DETECTOR_MODEL)
        if configured.is_file():
            if sha256_of(configured) == YUNET_SHA256:
                self.stdout.write(self.style.SUCCESS(f"Face detector: {configured} (sha256 verified)."))
            else:
                # A deliberately configured file is used as it is; say that it is not the published one.
                self.stdout.write(self.style.WARNING(
                    f"Face detector: {configured} is not the published YuNet file (sha256 differs); it is used "
                    "as configured by ROLLCALL_DETECTOR_MODEL."
                ))
            return
        path = resolve_detector_model(settings.ROLLCALL_MODEL_DIR, download=not offline)
        self.stdout.write(self.style.SUCCESS(f"Face detector: {path} (sha256 verified)."))
        if path != configured:
            self.stdout.write(
                f"Note: ROLLCALL_DETECTOR_MODEL points to {configured}, which does not exist; the app uses {path}."
            )

    def _embedder(self, *, offline: bool) -> None:
        if offline:
            os.environ["HF_HUB_OFFLINE"] = "1"  # read at call time by recognition.weights
        embedder = ml.embedder()
        load = getattr(embedder, "load", None)
        if callable(load):
            load()  # fetches CLIP weights into the cache when online; raises ModelUnavailableError otherwise
        self.stdout.write(self.style.SUCCESS(f"Embedder: {embedder.name} ready ({ml.backbone_name()} backbone)."))
