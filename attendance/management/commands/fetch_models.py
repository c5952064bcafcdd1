"""Put the model files the app needs in place, then say in one line what the site runs and why.

The YuNet face detector (checked by sha256), the CLIP weights where CLIP is to run (with
ROLLCALL_BACKBONE=auto, fetched here when the hub answers, so that every process then finds them in
the cache and they all choose the same backbone) and the MiniFASNet liveness models. With "auto",
what cannot be had is replaced by what ships installed (dlib's backbone and detector); liveness
without its models is reported and degrades (check-ins go on without it). ./rollcall up runs this.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError, CommandParser

from attendance import ml
from recognition import YUNET_SHA256, ClipEmbedder, ModelUnavailableError, resolve_antispoof_models
from recognition.weights import sha256_of


class Command(BaseCommand):
    help = (
        "Fetch the face detector, the CLIP weights (ROLLCALL_BACKBONE=clip, or auto where the hub answers) and the "
        "liveness models into ROLLCALL_MODEL_DIR, checking their checksums; then print what the site runs and why."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--offline", action="store_true", help="Only check what is in place; download nothing.")

    def handle(self, *args: Any, **options: Any) -> None:
        offline = bool(options["offline"])
        if offline:
            os.environ["HF_HUB_OFFLINE"] = "1"  # read at call time by recognition.weights
        ml.reset()  # decide from the settings and files as they are now
        problems: list[str] = []
        for check in (self._embedder, self._detector):
            try:
                check(offline=offline)
            except ModelUnavailableError as exc:
                problems.append(str(exc))
                self.stderr.write(self.style.ERROR(str(exc)))
        self._liveness(offline=offline)
        if problems:
            raise CommandError(
                f"{len(problems)} model file(s) missing; recognition will not work until they are in place."
            )
        ml.reset()  # decide again from what is now in place, as the web and worker processes will
        self.stdout.write(self.style.SUCCESS(ml.summary()))

    def _embedder(self, *, offline: bool) -> None:
        if str(settings.ROLLCALL_BACKBONE) == "auto" and ml.backbone_name() == "dlib" and not offline:
            # Not on this machine yet: fetch CLIP's weights now if the hub answers, so that "auto"
            # finds them in every process from now on.
            try:
                ClipEmbedder(settings.ROLLCALL_CLIP_MODEL, pretrained=settings.ROLLCALL_CLIP_PRETRAINED,
                             tower_dir=settings.ROLLCALL_MODEL_DIR).load()  # the tower converted once, too
                ml.reset()
            except ModelUnavailableError as exc:
                self.stdout.write(f"CLIP weights not fetched ({exc}); running dlib's backbone instead.")
        embedder = ml.embedder()
        load = getattr(embedder, "load", None)
        if callable(load):
            load()  # CLIP: its weights (fetched when online); dlib: converted to torch once, into ROLLCALL_MODEL_DIR
        self.stdout.write(self.style.SUCCESS(f"Embedder: {embedder.name} ready ({ml.backbone_name()} backbone)."))

    def _detector(self, *, offline: bool) -> None:
        configured = Path(settings.ROLLCALL_DETECTOR_MODEL)
        if configured.is_file() and sha256_of(configured) != YUNET_SHA256:
            # A deliberately configured file is used as it is; say that it is not the published one.
            self.stdout.write(self.style.WARNING(
                f"Face detector: {configured} is not the published YuNet file (sha256 differs); it is used "
                "as configured by ROLLCALL_DETECTOR_MODEL."
            ))
            return
        choice = ml.detector_choice()
        if choice.name == "yunet":
            self.stdout.write(self.style.SUCCESS(f"Face detector: {choice.path} (sha256 verified)."))
            if choice.path != configured:
                self.stdout.write(
                    f"Note: ROLLCALL_DETECTOR_MODEL points to {configured}, which does not exist; the app uses "
                    f"{choice.path}."
                )
        else:
            self.stdout.write(self.style.WARNING(f"Face detector: dlib's HOG detector ({choice.reason})."))
        ml.detector()

    def _liveness(self, *, offline: bool) -> None:
        try:
            paths = resolve_antispoof_models(settings.ROLLCALL_LIVENESS_MODEL_DIR, download=not offline)
            scorer = ml.liveness()
            scorer.load()  # checks both files and prepares the faster engine once, not at the first check-in
        except ModelUnavailableError as exc:
            self.stdout.write(self.style.WARNING(
                f"Liveness: not available ({exc}) Check-ins go on without liveness checks until the files are in "
                "place; /healthz and the admin overview say so."
            ))
            return
        folder = settings.ROLLCALL_LIVENESS_MODEL_DIR
        engine = scorer.engine if not scorer.engine_reason else f"{scorer.engine}: {scorer.engine_reason}"
        self.stdout.write(self.style.SUCCESS(f"Liveness: {len(paths)} models in {folder} (run by {engine})."))
