"""Switch the site to the embedding space the settings ask for (ROLLCALL_BACKBONE and the CLIP
settings): kept enrolment videos are embedded again, other students are asked to enrol again, and
the switch itself is one transaction (attendance/spaces/services.py)."""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser
from tqdm import tqdm

from attendance import ml
from attendance.spaces.services import SpaceError, space_reembed
from recognition import ModelUnavailableError


class Command(BaseCommand):
    help = (
        "Re-embed every enrolment into the space the settings ask for and switch the site to it. Students "
        "whose enrolment video was not kept (ROLLCALL_KEEP_ENROLMENT_VIDEOS) are asked to enrol again."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--no-progress", action="store_true", help="No progress bar (for logs).")

    def handle(self, *args: Any, **options: Any) -> None:
        ml.reset()
        target = ml.configured_embedder()
        self.stdout.write(f"Switching from {ml.embedder_name()} to {target.name}.")
        bar = tqdm(total=0, desc="Re-embedding enrolments", unit="student", disable=options["no_progress"],
                   file=getattr(self.stderr, "_out", None))

        def progress(done: int, total: int) -> None:
            bar.total = total
            bar.update(done - bar.n)

        try:
            result = space_reembed(progress=progress)
        except (SpaceError, ModelUnavailableError) as exc:
            raise CommandError(str(exc)) from exc
        finally:
            bar.close()
        self.stdout.write(self.style.SUCCESS(
            f"The site now serves {result.space} (was {result.previous or 'nothing'}): {result.reembedded} student(s) "
            f"re-embedded from their kept video, {result.reenrol} asked to enrol again."
        ))
