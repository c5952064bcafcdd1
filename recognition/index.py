"""A FAISS index of one gallery's embeddings, keyed by the caller's integer ids.

The index is a cache of stored embeddings: it is saved atomically with the model name,
dimension, format version and count, and anything unexpected on load raises IndexFormatError
so the caller rebuilds it from the database.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import struct
import tempfile
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

import faiss
import numpy as np

from .errors import IndexFormatError
from .types import Neighbour

FORMAT_VERSION = 1
_MAGIC = b"ROLLCALL-INDEX\x00\x00"
_HEADER_LENGTH = struct.Struct("<Q")
_UNIT_TOLERANCE = 1e-3


APPROXIMATE_ABOVE = 50_000
"""Exact search up to this many vectors. A 12k-vector course (500 students x 24 views) searches
in a few ms exactly; see ``python -m recognition.bench`` for the measured curve."""


class FaceIndex:
    """Exact L2 search (IndexFlatL2, as in the paper) while small; an inverted-file index
    (IVF, which unlike HNSW can remove entries) once it holds more than ``approximate_above``
    vectors, with 8-bit codes from 256 dimensions up (see ``ivf_parameters``). Vectors must be
    unit length, so L2 and cosine rank the same.

    Not safe for concurrent writes; concurrent searches are fine.
    """

    def __init__(self, dim: int, *, backbone: str, approximate_above: int = APPROXIMATE_ABOVE) -> None:
        if dim < 1:
            raise ValueError("dim must be positive")
        self.dim = dim
        self.backbone = backbone
        self.approximate_above = approximate_above
        self.nprobe = 0
        self._index: Any = faiss.IndexIDMap2(faiss.IndexFlatL2(dim))
        self._ids: set[int] = set()

    @property
    def approximate(self) -> bool:
        return isinstance(self._index, faiss.IndexIVF)

    def __len__(self) -> int:
        return int(self._index.ntotal)

    def __contains__(self, id_: object) -> bool:
        return id_ in self._ids

    def ids(self) -> np.ndarray:
        """The stored ids, ascending."""
        return np.array(sorted(self._ids), dtype=np.int64)

    def add(self, ids: Iterable[int] | np.ndarray, vectors: np.ndarray) -> None:
        """Add unit vectors under the caller's int64 ids (which must be new: remove first to
        replace an embedding)."""
        id_array = np.ascontiguousarray(np.asarray(ids, dtype=np.int64).reshape(-1))
        matrix = self._check_vectors(vectors)
        if len(id_array) != len(matrix):
            raise ValueError(f"{len(id_array)} ids for {len(matrix)} vectors")
        if len(set(id_array.tolist())) != len(id_array):
            raise ValueError("duplicate ids in one add")
        clash = self._ids.intersection(id_array.tolist())
        if clash:
            raise ValueError(f"ids already in the index: {sorted(clash)[:10]}; remove them first")
        if not len(id_array):
            return
        if not self.approximate and len(self) + len(id_array) > self.approximate_above:
            # Straight into the IVF index: never a flat copy of a large gallery first.
            self._to_approximate(id_array, matrix)
        else:
            self._index.add_with_ids(matrix, id_array)
        self._ids.update(id_array.tolist())

    def remove(self, ids: Iterable[int] | np.ndarray) -> int:
        """Remove these ids (unknown ones are ignored); returns how many were removed."""
        id_array = np.ascontiguousarray(np.asarray(ids, dtype=np.int64).reshape(-1))
        present = np.array([i for i in id_array.tolist() if i in self._ids], dtype=np.int64)
        if not len(present):
            return 0
        removed = int(self._index.remove_ids(faiss.IDSelectorBatch(present)))
        self._ids.difference_update(present.tolist())
        return removed

    def search(self, vectors: np.ndarray, k: int) -> list[list[Neighbour]]:
        """The ``k`` nearest stored vectors of each query, nearest first (fewer when the index
        holds fewer); distances are L2, not squared."""
        if k < 1:
            raise ValueError("k must be at least 1")
        matrix = self._check_vectors(vectors)
        if not len(matrix):
            return []
        if not len(self):
            return [[] for _ in range(len(matrix))]
        squared, found = self._index.search(matrix, min(k, len(self)))
        return [
            [
                Neighbour(id=int(i), distance=math.sqrt(max(float(d), 0.0)))
                for d, i in zip(row_d, row_i, strict=True)
                if i >= 0
            ]
            for row_d, row_i in zip(squared, found, strict=True)
        ]

    def save(self, path: str | os.PathLike[str], *, encrypt: Callable[[bytes], bytes] | None = None) -> None:
        """Write to ``path`` atomically: a temporary file beside it, then os.replace, so a reader
        sees the old index or the new one, never half of one. ``encrypt`` (bytes in, bytes out)
        seals the whole file, header included (built in memory once for it: a copy the size of the
        index); ``load`` then needs the matching ``decrypt``."""
        target = Path(path)
        # Written and hashed as the array faiss returns: no bytes copy (a 1M-vector 512-d index is 2 GB).
        payload = memoryview(faiss.serialize_index(self._index))  # type: ignore[arg-type]
        header = json.dumps(
            {
                "format_version": FORMAT_VERSION,
                "backbone": self.backbone,
                "dim": self.dim,
                "count": len(self),
                "approximate": self.approximate,
                "approximate_above": self.approximate_above,
                "nprobe": self.nprobe,
                "sha256": hashlib.sha256(payload).hexdigest(),
            }
        ).encode()
        target.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp_name = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.", suffix=".tmp")
        try:
            with os.fdopen(fd, "wb") as fh:
                if encrypt is not None:
                    fh.write(encrypt(_MAGIC + _HEADER_LENGTH.pack(len(header)) + header + payload))
                else:
                    fh.write(_MAGIC + _HEADER_LENGTH.pack(len(header)) + header)
                    fh.write(payload)
                fh.flush()
                os.fsync(fh.fileno())
            os.replace(tmp_name, target)
        except BaseException:
            Path(tmp_name).unlink(missing_ok=True)
            raise

    @classmethod
    def load(
        cls, path: str | os.PathLike[str], *, backbone: str, dim: int,
        decrypt: Callable[[bytes], bytes] | None = None,
    ) -> FaceIndex:
        """Read an index saved by ``save``, checking it was built for this backbone and dim.
        Raises IndexFormatError (rebuild it) on a missing, corrupt or mismatched file; whatever
        ``decrypt`` raises (the caller's key errors) goes through unchanged."""
        source = Path(path)
        try:
            data = source.read_bytes()
        except FileNotFoundError as exc:
            raise IndexFormatError(f"No index at {source}: build it.") from exc
        except OSError as exc:
            message = f"Cannot read the index at {source} ({exc}): rebuild it."
            raise IndexFormatError(message) from exc
        if decrypt is not None:
            data = decrypt(data)
        header, payload = _split(data, source)
        if header.get("format_version") != FORMAT_VERSION:
            raise IndexFormatError(
                f"The index at {source} has format {header.get('format_version')}, this version "
                f"reads {FORMAT_VERSION}: rebuild it."
            )
        if header.get("backbone") != backbone or header.get("dim") != dim:
            raise IndexFormatError(
                f"The index at {source} was built with {header.get('backbone')} "
                f"({header.get('dim')}-d), not {backbone} ({dim}-d): rebuild it."
            )
        if hashlib.sha256(payload).hexdigest() != header.get("sha256"):
            raise IndexFormatError(f"The index at {source} is corrupt (checksum): rebuild it.")
        try:
            index = faiss.deserialize_index(np.frombuffer(payload, dtype=np.uint8))
        except RuntimeError as exc:
            message = f"The index at {source} is corrupt ({exc}): rebuild it."
            raise IndexFormatError(message) from exc
        if index.d != dim or index.ntotal != header.get("count"):
            raise IndexFormatError(f"The index at {source} disagrees with its header: rebuild it.")
        result = cls(dim, backbone=backbone, approximate_above=int(header["approximate_above"]))
        result._index = index
        result.nprobe = int(header.get("nprobe", 0))
        if isinstance(index, faiss.IndexIVF):
            index.nprobe = max(1, result.nprobe)
        result._ids = set(_stored_ids(index).tolist())
        return result

    def _check_vectors(self, vectors: np.ndarray) -> np.ndarray:
        matrix = np.ascontiguousarray(np.asarray(vectors, dtype=np.float32))
        if matrix.ndim == 1:
            matrix = matrix[None, :]
        if matrix.ndim != 2 or matrix.shape[1] != self.dim:
            raise ValueError(f"expected vectors of shape (n, {self.dim}), got {matrix.shape}")
        if not np.isfinite(matrix).all():
            raise ValueError("vectors contain NaN or infinity")
        norms = np.linalg.norm(matrix, axis=1)
        if len(norms) and np.abs(norms - 1.0).max() > _UNIT_TOLERANCE:
            raise ValueError("vectors must be L2-normalised (unit length)")
        return matrix

    def _to_approximate(self, new_ids: np.ndarray, new_vectors: np.ndarray) -> None:
        count = len(self)
        if count:
            flat = faiss.downcast_index(self._index.index)
            old_ids = faiss.vector_to_array(self._index.id_map).astype(np.int64)
            vectors = np.concatenate([flat.reconstruct_n(0, count), new_vectors])
            ids = np.concatenate([old_ids, new_ids])
        else:
            vectors, ids = new_vectors, new_ids
        nlist, nprobe = ivf_parameters(len(ids), self.dim)
        quantizer = faiss.IndexFlatL2(self.dim)
        ivf: Any
        if self.dim >= 256:
            # 8-bit codes: a quarter of the memory and of the bytes each probe scans; at 1M 512-d
            # face-like vectors, distances move ~0.005 and recall@10 against exact stays >= 0.95.
            ivf = faiss.IndexIVFScalarQuantizer(quantizer, self.dim, nlist, faiss.ScalarQuantizer.QT_8bit,
                                                faiss.METRIC_L2)
        else:
            ivf = faiss.IndexIVFFlat(quantizer, self.dim, nlist, faiss.METRIC_L2)
        ivf.cp.niter = 20
        ivf.train(_training_sample(vectors, nlist))
        ivf.add_with_ids(vectors, ids)
        self.nprobe = nprobe
        ivf.nprobe = self.nprobe
        self._quantizer = quantizer  # the IVF index does not own it from Python's side
        self._index = ivf


def ivf_parameters(count: int, dim: int = 512) -> tuple[int, int]:
    """(lists, lists probed per query) of the IVF index for ``count`` vectors of ``dim`` dimensions.

    About 2 * sqrt(n) lists, each trained on >= 39 points (faiss's floor). Probes, measured with
    face-like vectors (tight clusters of 20 samples per identity, recognition.bench) at 1M on 2
    cores, one thread (BENCHMARKS.md):
    - below 256 dimensions (IVF-Flat), max(16, lists/64) and half as many again: 128-d, 2000 lists,
      46 probed: recall@10 0.965 in 3.1 ms (31 probed: 0.946 in 2.2 ms);
    - from 256 (IVF with 8-bit codes, see _to_approximate), max(24, 3 * lists / 256): 512-d, 24
      probed: 0.958 in 9.4 ms. k-means lists of 512-d face-like vectors are unbalanced (a few
      centroids become hubs: imbalance factor 5.3), so each probe scans more than its share.
    Strangers' nearest neighbours may be missed, but those found are about as far: the threshold
    still says Unknown (tests/recognition).
    """
    nlist = max(1, min(round(2 * math.sqrt(count)), count // 39))
    nprobe = max(16, nlist // 64)
    if dim < 256:
        nprobe = nprobe * 3 // 2
    else:
        nprobe = max(24, nlist * 3 // 256)
    return nlist, min(nlist, nprobe)


def _training_sample(vectors: np.ndarray, nlist: int) -> np.ndarray:
    """At most 64 points per list: k-means on all of 1M vectors would take minutes on 2 cores
    and place the centroids no better."""
    limit = 64 * nlist
    if len(vectors) <= limit:
        return vectors
    rows = np.sort(np.random.default_rng(0).choice(len(vectors), size=limit, replace=False))
    return np.ascontiguousarray(vectors[rows])


def _split(data: bytes, source: Path) -> tuple[dict[str, Any], memoryview]:
    start = len(_MAGIC) + _HEADER_LENGTH.size
    if not data.startswith(_MAGIC) or len(data) < start:
        raise IndexFormatError(f"{source} is not a Rollcall index file: rebuild it.")
    (length,) = _HEADER_LENGTH.unpack_from(data, len(_MAGIC))
    try:
        header = json.loads(data[start : start + length])
    except ValueError as exc:
        raise IndexFormatError(f"The index at {source} has a corrupt header: rebuild it.") from exc
    if not isinstance(header, dict):
        raise IndexFormatError(f"The index at {source} has a corrupt header: rebuild it.")
    # A view, not a slice: slicing would copy the whole index once more while loading it.
    return header, memoryview(data)[start + length :]


def _stored_ids(index: Any) -> np.ndarray:
    if isinstance(index, faiss.IndexIDMap):
        return faiss.vector_to_array(index.id_map).astype(np.int64)
    invlists = index.invlists
    parts = []
    for list_no in range(index.nlist):
        size = invlists.list_size(list_no)
        if size:
            parts.append(faiss.rev_swig_ptr(invlists.get_ids(list_no), size).copy())
    return np.concatenate(parts).astype(np.int64) if parts else np.zeros(0, dtype=np.int64)
