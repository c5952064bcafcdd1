"""--enrolment-rules: the evaluation's gallery videos give the faces the web app's enrolment keeps."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from recognition import DlibEmbedder, FaceDetector
from recognition.enrol import EnrolmentRules, video_views
from recognition.evaluation import EmbeddingCache, SetEmbedder
from recognition.evaluation.dataset import Source

pytestmark = pytest.mark.slow


def test_a_gallery_video_gives_what_enrolment_keeps_and_a_refused_video_gives_nothing(
    faces_dir: Path, detector: FaceDetector, tmp_path: Path
):
    embedder = DlibEmbedder()
    talking = Source(path=faces_dir / "videos" / "katie_hill_talking.mp4", label="katie", kind="video")
    crowd = Source(path=faces_dir / "videos" / "stage_crowd.mp4", label="crowd", kind="video")
    worker = SetEmbedder(detector, embedder, cache=EmbeddingCache(tmp_path / "cache"), progress=False)

    every_frame = worker.embed([talking])
    judged = worker.embed([talking, crowd], enrolment=True)
    options = worker.options
    kept, _ = video_views(talking.path, detector=detector, crop=embedder.crop, rules=EnrolmentRules(
        sample_fps=options.video_fps, max_sampled_frames=options.video_max_frames, max_frame_side=options.max_side))
    assert judged.labels.tolist() == ["katie"] * len(kept)  # the crowd (several people) is refused whole
    assert len(kept) <= EnrolmentRules().max_embeddings < len(every_frame)
    assert np.allclose(judged.vectors, embedder.encode([v.crop for v in kept]), atol=1e-5)
    # Cached apart from the every-frame samples: a rerun reads both back unchanged.
    misses = worker.cache.misses
    assert np.allclose(worker.embed([talking], enrolment=True).vectors, judged.vectors)
    assert np.allclose(worker.embed([talking]).vectors, every_frame.vectors, equal_nan=True)
    assert worker.cache.misses == misses
