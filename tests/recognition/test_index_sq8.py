"""Large galleries of 512-d vectors go into an IVF index with 8-bit codes: recall and distances stay
close to exact search, and removal and the saved form work as for the other indexes."""

from __future__ import annotations

from pathlib import Path

import faiss
import numpy as np

from recognition import FaceIndex
from recognition.bench import enrolled_probes, face_like_gallery, stranger_probes


def test_a_large_512_d_gallery_keeps_recall_and_distances_with_8_bit_codes(tmp_path: Path):
    gallery = face_like_gallery(6000, 512, per_identity=20, seed=12)
    ids = np.arange(len(gallery.vectors), dtype=np.int64) * 7 + 1
    flat = FaceIndex(512, backbone="test")
    flat.add(ids, gallery.vectors)
    approximate = FaceIndex(512, backbone="test", approximate_above=3000)
    approximate.add(ids, gallery.vectors)
    assert approximate.approximate
    assert isinstance(faiss.downcast_index(approximate._index), faiss.IndexIVFScalarQuantizer)

    probes = enrolled_probes(gallery, 100, seed=13)
    k = 10
    truth, found = flat.search(probes, k), approximate.search(probes, k)
    recall = np.mean([len({h.id for h in a} & {h.id for h in t}) / k for a, t in zip(found, truth, strict=True)])
    assert recall >= 0.95
    exact = {(row, h.id): h.distance for row, hits in enumerate(truth) for h in hits}
    errors = [abs(h.distance - exact[(row, h.id)]) for row, hits in enumerate(found) for h in hits
              if (row, h.id) in exact]
    assert max(errors) < 0.02  # thresholds are 0.27 (dlib) and 0.82 (CLIP)

    strangers = stranger_probes(gallery, 30, seed=14)
    ratio = np.divide([h[0].distance for h in approximate.search(strangers, 1)],
                      [h[0].distance for h in flat.search(strangers, 1)])
    assert np.median(ratio) < 1.05 and ratio.max() < 1.2

    assert approximate.remove(ids[:5]) == 5
    path = tmp_path / "sq8.faiss"
    approximate.save(path)
    loaded = FaceIndex.load(path, backbone="test", dim=512)
    assert loaded.approximate and len(loaded) == len(ids) - 5
    assert loaded.search(probes[:10], k) == approximate.search(probes[:10], k)
