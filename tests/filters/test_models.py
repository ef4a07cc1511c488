"""`gap-replay models download` against a real HTTP server on 127.0.0.1 serving the model file."""

import functools
import threading
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer

import pytest

from gap_replay.filters.models import SHA256, DownloadError, download_model
from gap_replay.cli import main


class QuietHandler(SimpleHTTPRequestHandler):
    def log_message(self, *args):
        pass


@pytest.fixture
def model_server(lid_model):
    handler = functools.partial(QuietHandler, directory=str(lid_model.parent))
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


def test_download_verifies_and_caches(model_server, tmp_path, lid_model):
    messages = []
    path = download_model(tmp_path / "m" / "lid.176.ftz", url=f"{model_server}/lid.176.ftz", say=messages.append)
    assert path.read_bytes() == lid_model.read_bytes()
    assert messages[-1].startswith("model saved and verified")
    download_model(path, url=f"{model_server}/missing.ftz", say=messages.append)  # cached: no request needed
    assert messages[-1].startswith("model already cached")


def test_checksum_mismatch_and_http_errors_are_refused(model_server, tmp_path):
    with pytest.raises(DownloadError, match="checksum mismatch"):
        download_model(tmp_path / "x.ftz", url=f"{model_server}/lid.176.ftz", sha256="0" * 64, say=print)
    with pytest.raises(DownloadError, match="HTTP 404"):
        download_model(tmp_path / "x.ftz", url=f"{model_server}/nope.ftz", allow_wheel=False, say=print)
    assert not (tmp_path / "x.ftz").exists()


def test_cli_download(model_server, tmp_path, capsys):
    target = tmp_path / "lid.176.ftz"
    assert main(["models", "download", "--url", f"{model_server}/lid.176.ftz", "--output", str(target)]) == 0
    assert target.is_file() and SHA256
    assert main(["models", "download", "--url", "http://127.0.0.1:1/lid.176.ftz", "--output",
                 str(tmp_path / "other.ftz")]) == 1
    assert "cannot reach http://127.0.0.1:1/lid.176.ftz" in capsys.readouterr().err
