"""Downloads against a local HTTP server (never the internet): resume, size and checksum checks, no network."""
from __future__ import annotations

import hashlib
import http.server
import socket
import threading
import time
from pathlib import Path

import pytest

from benchmark.data import download as dl
from benchmark.data.errors import DataError

PAYLOAD = bytes(range(256)) * 4096  # 1 MiB


class Handler(http.server.BaseHTTPRequestHandler):
    """Serves PAYLOAD with Range support; `cut_after` bytes then drops the connection on the first request."""

    cut_after: int | None = None
    requests: list[str | None] = []

    def do_GET(self) -> None:  # noqa: N802
        Handler.requests.append(self.headers.get("Range"))
        start = 0
        rng = self.headers.get("Range")
        if rng:
            start = int(rng.split("=")[1].split("-")[0])
            if start >= len(PAYLOAD):
                self.send_response(416)
                self.send_header("Content-Range", f"bytes */{len(PAYLOAD)}")
                self.end_headers()
                return
            self.send_response(206)
            self.send_header("Content-Range", f"bytes {start}-{len(PAYLOAD) - 1}/{len(PAYLOAD)}")
        else:
            self.send_response(200)
        body = PAYLOAD[start:]
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if Handler.cut_after is not None:
            self.wfile.write(body[:Handler.cut_after])
            self.wfile.flush()
            Handler.cut_after = None
            self.close_connection = True
            self.connection.shutdown(socket.SHUT_RDWR)
            return
        self.wfile.write(body)

    def log_message(self, *args) -> None:
        pass


@pytest.fixture
def server():
    Handler.requests = []
    Handler.cut_after = None
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}/file.bin"
    httpd.shutdown()
    httpd.server_close()


def test_download_resumes_and_checks_checksum(server: str, tmp_path: Path) -> None:
    dest = tmp_path / "file.bin"
    sha = hashlib.sha256(PAYLOAD).hexdigest()
    Handler.cut_after = 300_000
    with pytest.raises(DataError, match="resume"):
        dl.download_file(server, dest, sha, timeout=5, progress=False)
    assert not dest.exists() and (tmp_path / "file.bin.part").stat().st_size == 300_000
    assert dl.download_file(server, dest, sha, timeout=5, progress=False) == sha
    assert Handler.requests == [None, "bytes=300000-"]
    assert dest.read_bytes() == PAYLOAD and not (tmp_path / "file.bin.part").exists()


def test_complete_part_file_is_accepted(server: str, tmp_path: Path) -> None:
    (tmp_path / "file.bin.part").write_bytes(PAYLOAD)
    dl.download_file(server, tmp_path / "file.bin", hashlib.sha256(PAYLOAD).hexdigest(), timeout=5, progress=False)
    assert (tmp_path / "file.bin").read_bytes() == PAYLOAD


def test_checksum_mismatch_leaves_no_file(server: str, tmp_path: Path) -> None:
    with pytest.raises(DataError, match="does not match the expected"):
        dl.download_file(server, tmp_path / "file.bin", "0" * 64, timeout=5, progress=False)
    assert list(tmp_path.iterdir()) == []


def test_no_network_fails_fast_with_the_file_list(tmp_path: Path, monkeypatch) -> None:
    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    src = dl.SOURCES["movielens"]
    monkeypatch.setitem(dl.SOURCES, "movielens", dl.Source(
        src.title, (dl.RemoteFile("ml-1m.zip", f"http://127.0.0.1:{port}/ml-1m.zip"),), src.required,
        src.homepage, src.extract_hint))
    started = time.monotonic()
    with pytest.raises(DataError) as err:
        dl.ensure_raw_files("movielens", tmp_path / "raw", src.required, allow_download=True, timeout=2)
    assert time.monotonic() - started < 10
    msg = str(err.value)
    for text in ("ratings.dat or ratings.dat.gz", "users.dat", "movies.dat", str(tmp_path / "raw"),
                 "Download failed: cannot reach", "dataset.raw_dir="):
        assert text in msg


def test_movielens_zip_is_extracted(tmp_path: Path, monkeypatch) -> None:
    import zipfile

    zpath = tmp_path / "raw" / "ml-1m.zip"
    zpath.parent.mkdir()
    with zipfile.ZipFile(zpath, "w") as zf:
        zf.writestr("ml-1m/ratings.dat", "1::1::5::978300760\n")
        zf.writestr("ml-1m/users.dat", "1::F::1::10::48067\n")
        zf.writestr("ml-1m/movies.dat", "1::Toy Story (1995)::Animation|Children's|Comedy\n")
    dl._extract_ml1m(zpath, tmp_path / "raw")
    assert (tmp_path / "raw" / "ratings.dat").read_text() == "1::1::5::978300760\n"
    assert dl.missing("movielens", tmp_path / "raw") == []


def test_cli_download_failure_and_stats(tmp_path: Path, monkeypatch, capsys) -> None:
    import json
    import sys

    from benchmark.data.__main__ import main

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    src = dl.SOURCES["movielens"]
    monkeypatch.setitem(dl.SOURCES, "movielens", dl.Source(
        src.title, (dl.RemoteFile("ml-1m.zip", f"http://127.0.0.1:{port}/ml-1m.zip"),), src.required,
        src.homepage, src.extract_hint))
    assert main(["download", "movielens", "--raw-dir", str(tmp_path / "raw"), "--timeout", "2"]) == 2
    err = capsys.readouterr().err
    assert "ratings.dat or ratings.dat.gz, users.dat, movies.dat" in err and "ml-1m.zip" in err

    sys.path.insert(0, str(Path(__file__).parent))
    from test_data_movielens import write_raw

    raw = write_raw(tmp_path / "ml")
    assert main(["stats", "movielens", "--raw-dir", str(raw), "--cache-dir", str(tmp_path / "c"), "max_len=5"]) == 0
    stats = json.loads(capsys.readouterr().out)
    assert stats["ratings"] == 11 and stats["max_len"] == 5


def test_cli_stats_refuses_unknown_keys_and_bad_values(tmp_path: Path, capsys) -> None:
    import sys

    from benchmark.data.__main__ import main

    cache = ["--cache-dir", str(tmp_path / "c")]
    assert main(["stats", "synthetic", *cache, "num_userz=5"]) == 2
    err = capsys.readouterr().err
    assert "unknown key(s) num_userz for dataset synthetic" in err and "num_users" in err
    assert main(["stats", "synthetic", *cache, "num_users=0"]) == 2
    assert "num_users" in capsys.readouterr().err
    sys.path.insert(0, str(Path(__file__).parent))
    from test_data_movielens import write_raw

    raw = write_raw(tmp_path / "ml")
    (tmp_path / "a-file").write_text("")
    assert main(["stats", "movielens", "--raw-dir", str(raw), "--cache-dir", str(tmp_path / "a-file")]) == 2
    assert "a-file" in capsys.readouterr().err
