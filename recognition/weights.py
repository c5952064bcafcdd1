"""Finding model files in local caches, and downloading them only when that can work.

The rule: look in the cache first, never let a library retry an unreachable host. Offline
(HF_HUB_OFFLINE set, or the host not answering within a second) a missing file is an
immediate ModelUnavailableError that names what to configure.
"""

from __future__ import annotations

import hashlib
import os
import socket
import tempfile
import threading
import urllib.parse
import urllib.request
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from .errors import ModelUnavailableError

CLIP_SETTINGS_HINT = (
    "Set ROLLCALL_CLIP_CHECKPOINT to a local weights file, set ROLLCALL_CLIP_PRETRAINED to a "
    "tag whose weights are in the cache (download them once on a machine with internet), or "
    "use the backbone 'dlib', which works offline."
)
_PROBE_TIMEOUT_S = 0.8
_DOWNLOAD_TIMEOUT_S = 60.0
_HF_WEIGHTS = ("open_clip_model.safetensors", "open_clip_pytorch_model.bin")


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def hub_offline() -> bool:
    """True when the environment asks for no Hugging Face network access (read at call time,
    because huggingface_hub reads it only once, at import)."""
    value = os.environ.get("HF_HUB_OFFLINE") or os.environ.get("TRANSFORMERS_OFFLINE") or ""
    return value.strip().upper() in {"1", "ON", "YES", "TRUE"}


def host_reachable(url: str, *, timeout: float = _PROBE_TIMEOUT_S) -> bool:
    """Whether a TCP connection to the URL's host (or the HTTPS proxy) opens within ``timeout``.

    Name resolution has no timeout of its own, so the attempt runs in a daemon thread.
    """
    proxy = os.environ.get("HTTPS_PROXY") or os.environ.get("https_proxy")
    parsed = urllib.parse.urlsplit(proxy or url)
    host = parsed.hostname
    if not host:
        return False
    port = parsed.port or (443 if parsed.scheme == "https" else 80)
    result: list[bool] = []

    def attempt() -> None:
        try:
            with socket.create_connection((host, port), timeout=timeout):
                result.append(True)
        except OSError:
            result.append(False)

    thread = threading.Thread(target=attempt, daemon=True)
    thread.start()
    thread.join(timeout)
    return bool(result and result[0])


def download_file(url: str, target: Path, *, sha256: str, what: str) -> None:
    """Fetch ``url`` to ``target`` through a temporary file, checking its sha256 before the
    os.replace, so a crash or a bad download never leaves a half file under the real name."""
    if not host_reachable(url):
        raise ModelUnavailableError(
            f"Cannot download {what}: {urllib.parse.urlsplit(url).hostname} is unreachable "
            f"(offline?). Copy it to {target} by hand (sha256 {sha256}); source: {url}."
        )
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.", suffix=".part")
    tmp = Path(tmp_name)
    try:
        digest = hashlib.sha256()
        # The URL is a constant https address of a public model, not user input.
        with (
            os.fdopen(fd, "wb") as out,
            urllib.request.urlopen(  # noqa: S310
                url, timeout=_DOWNLOAD_TIMEOUT_S
            ) as response,
        ):
            for chunk in iter(lambda: response.read(1 << 20), b""):
                digest.update(chunk)
                out.write(chunk)
        if digest.hexdigest() != sha256:
            raise ModelUnavailableError(
                f"Downloaded {what} from {url} but its sha256 is {digest.hexdigest()}, not "
                f"{sha256}: the upstream file changed or the download was tampered with. Copy "
                f"the right file to {target} by hand."
            )
        os.replace(tmp, target)
    except OSError as exc:
        message = f"Downloading {what} from {url} failed ({exc})."
        hint = f"Copy it to {target} by hand (sha256 {sha256})."
        raise ModelUnavailableError(f"{message} {hint}") from exc
    finally:
        tmp.unlink(missing_ok=True)


def write_file_atomically(target: Path, data: bytes) -> None:
    """``data`` under ``target`` through a temporary file beside it and os.replace: a reader sees
    the old file or the whole new one, and a failed write leaves nothing behind. Raises OSError."""
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.", suffix=".part")
    tmp = Path(tmp_name)
    try:
        with os.fdopen(fd, "wb") as out:
            out.write(data)
        os.replace(tmp, target)
    finally:
        tmp.unlink(missing_ok=True)


def cached_clip_weights(cfg: Mapping[str, Any], cache_dir: str | None) -> Path | None:
    """The local file open_clip would load for a pretrained config, if it is already cached."""
    hub_id = str(cfg.get("hf_hub", ""))
    if hub_id:
        from huggingface_hub import try_to_load_from_cache

        # open_clip's convention: "org/repo/" means its default file names, "org/repo/file" one
        # file, and a .safetensors twin of a .bin/.pth file is preferred when it exists.
        if hub_id.endswith("/"):
            repo_id, filenames = hub_id.rstrip("/"), list(_HF_WEIGHTS)
        else:
            repo_id, filename = os.path.split(hub_id)
            stem, ext = os.path.splitext(filename)
            filenames = [stem + ".safetensors", filename] if ext in (".bin", ".pth") else [filename]
        for name in filenames:
            found = try_to_load_from_cache(repo_id, name, cache_dir=cache_dir)
            if isinstance(found, str) and os.path.isfile(found):
                return Path(found)
    url = str(cfg.get("url", ""))
    if url:
        local = Path(cache_dir or os.path.expanduser("~/.cache/clip")) / os.path.basename(url)
        if local.is_file():
            return local
    return None


def clip_download_url(cfg: Mapping[str, Any]) -> str:
    """The address open_clip would download a pretrained config's weights from."""
    if cfg.get("hf_hub"):
        return os.environ.get("HF_ENDPOINT", "https://huggingface.co")
    return str(cfg.get("url", ""))
