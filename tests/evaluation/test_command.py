"""manage.py evaluate: the same code as python -m recognition.evaluate, with the site's defaults."""

from __future__ import annotations

import io
from collections.abc import Callable
from pathlib import Path

import pytest
from django.core.management import CommandError, call_command

from attendance.management.commands.evaluate import settings_defaults


def test_defaults_come_from_the_settings(settings: object, tmp_path: Path):
    settings.ROLLCALL_BACKBONE = "dlib"  # type: ignore[attr-defined]
    settings.VAR_DIR = tmp_path  # type: ignore[attr-defined]
    defaults = settings_defaults()
    assert defaults.backbones == "dlib,clip"
    assert defaults.cache_dir == str(tmp_path / "evaluation-cache")
    assert defaults.clip_model == settings.ROLLCALL_CLIP_MODEL  # type: ignore[attr-defined]


def test_the_command_writes_the_report(
    make_flat: Callable[..., Path], subset_people: dict[str, list[Path]], detector_model: Path, cache_dir: Path,
    tmp_path: Path,
):
    root = make_flat({name: subset_people[name][:2] for name in ("john_salley", "yale_subject01")})
    out = io.StringIO()
    call_command("evaluate", str(root), out=str(tmp_path / "report"), backbones="dlib",
                 detector_model=str(detector_model), cache_dir=str(cache_dir), no_progress=True,
                 scalability_seeds=1, stdout=out)
    assert "dlib:resnet_v1:mirror: accuracy" in out.getvalue()
    assert (tmp_path / "report" / "report.md").is_file()
    assert (tmp_path / "report" / "dlib" / "grid_search_results.csv").is_file()


def test_a_malformed_dataset_is_a_command_error(tmp_path: Path, detector_model: Path):
    (tmp_path / "only_one" / "person").mkdir(parents=True)
    with pytest.raises(CommandError, match="at least two per person"):
        call_command("evaluate", str(tmp_path / "only_one"), backbones="dlib", detector_model=str(detector_model))
