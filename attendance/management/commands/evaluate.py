"""python manage.py evaluate DATASET: recognition.evaluate with the site's settings as defaults.

The same options and code as ``python -m recognition.evaluate``; only the defaults differ: the
configured backbone first, the CLIP model, weights and device, the detector model and a cache
under ROLLCALL_VAR_DIR.
"""

from __future__ import annotations

import argparse
from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError, CommandParser

from attendance import ml
from recognition import RecognitionError
from recognition import evaluate as cli
from recognition.evaluation import DatasetError


def settings_defaults() -> cli.Defaults:
    configured = ml.backbone_choice().name  # "auto" resolved: what this machine runs
    others = [name for name in ("clip", "dlib") if name != configured]
    return cli.Defaults(
        backbones=",".join([configured, *others]),
        clip_model=settings.ROLLCALL_CLIP_MODEL,
        clip_pretrained=settings.ROLLCALL_CLIP_PRETRAINED,
        clip_checkpoint=settings.ROLLCALL_CLIP_CHECKPOINT,
        device=settings.ROLLCALL_DEVICE,
        dlib_engine=settings.ROLLCALL_DLIB_ENGINE,
        detector_model=str(settings.ROLLCALL_DETECTOR_MODEL) if settings.ROLLCALL_DETECTOR_MODEL.is_file() else None,
        model_dir=str(settings.ROLLCALL_MODEL_DIR),
        cache_dir=str(settings.VAR_DIR / "evaluation-cache"),
    )


class Command(BaseCommand):
    help = (
        "Reproduce the paper's evaluation (grid search, per-class tables, figures, open-set rejection, "
        "scalability, backbones side by side) on a labelled dataset folder."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        cli.add_arguments(parser, settings_defaults())

    def handle(self, *args: Any, **options: Any) -> None:
        try:
            summary = cli.run(argparse.Namespace(**options))
        except (DatasetError, RecognitionError, ValueError) as exc:
            raise CommandError(str(exc)) from exc
        self.stdout.write("\n".join(cli.summary_lines(summary)))
