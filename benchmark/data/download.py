"""Fetching the original raw files: HTTP Range resume, size and SHA-256 checks, a progress bar.

Only the standard library's urllib is used. Without network the first request fails within `timeout`
seconds and the error names the files, the folder they belong in and where they come from.
"""
from __future__ import annotations

import hashlib
import logging
import os
import shutil
import socket
import urllib.error
import urllib.request
import zipfile
from dataclasses import dataclass
from pathlib import Path

from tqdm import tqdm

from benchmark.paths import default_raw_root
from benchmark.data.errors import DataError

log = logging.getLogger(__name__)

_AMAZON = "http://snap.stanford.edu/data/amazon/productGraph/categoryFiles/"


@dataclass(frozen=True)
class RemoteFile:
    name: str
    url: str
    sha256: str | None = None  # None: not known to us; the computed one is printed and saved in SHA256SUMS


@dataclass(frozen=True)
class Source:
    title: str
    remote: tuple[RemoteFile, ...]
    required: tuple[tuple[str, ...], ...]  # per needed file, the accepted names (any one is enough)
    homepage: str
    extract_hint: str = ""


# users.dat and movies.dat of ml-1m.zip, checksums from ../shared/data/README.md (genuine GroupLens files)
ML1M_MEMBER_SHA256 = {
    "users.dat": "1dc3a95300cb19f7c10e027daf29b8cdf1d908dab65b5edfb45950aa389a10a3",
    "movies.dat": "0140fc2356357c1a851d0f52e893a1e4d3696df632c4141cea8d5bc3d621f0b9",
}

SOURCES: dict[str, Source] = {
    "electronics": Source(
        "Amazon Electronics 5-core (McAuley et al. 2015, 2014 release)",
        (RemoteFile("reviews_Electronics_5.json.gz", _AMAZON + "reviews_Electronics_5.json.gz"),
         RemoteFile("meta_Electronics.json.gz", _AMAZON + "meta_Electronics.json.gz")),
        (("reviews_Electronics_5.json.gz",), ("meta_Electronics.json.gz",)),
        "http://jmcauley.ucsd.edu/data/amazon/",
    ),
    "books": Source(
        "Amazon Books 5-core (McAuley et al. 2015, 2014 release)",
        (RemoteFile("reviews_Books_5.json.gz", _AMAZON + "reviews_Books_5.json.gz"),
         RemoteFile("meta_Books.json.gz", _AMAZON + "meta_Books.json.gz")),
        (("reviews_Books_5.json.gz",), ("meta_Books.json.gz",)),
        "http://jmcauley.ucsd.edu/data/amazon/",
    ),
    "movielens": Source(
        "MovieLens-1M (GroupLens)",
        (RemoteFile("ml-1m.zip", "https://files.grouplens.org/datasets/movielens/ml-1m.zip"),),
        (("ratings.dat", "ratings.dat.gz"), ("users.dat",), ("movies.dat",)),
        "https://grouplens.org/datasets/movielens/1m/",
        "unzip ml-1m/ratings.dat, ml-1m/users.dat and ml-1m/movies.dat into that folder",
    ),
}


def default_raw_dir(name: str) -> Path:
    return default_raw_root() / name


def missing(name: str, raw_dir: Path, required: tuple[tuple[str, ...], ...] | None = None) -> list[str]:
    """The required files (as 'a or b' for alternatives) absent from raw_dir."""
    required = required or SOURCES[name].required
    return [" or ".join(alts) for alts in required if not any((raw_dir / a).is_file() for a in alts)]


def missing_message(name: str, raw_dir: Path, absent: list[str], reason: str = "") -> str:
    src = SOURCES[name]
    urls = "\n".join(f"    {r.url}" for r in src.remote)
    hint = f" ({src.extract_hint})" if src.extract_hint else ""
    msg = (
        f"{src.title}: missing raw file(s) {', '.join(absent)} in {raw_dir}.\n"
        f"  They come from{hint}:\n{urls}\n  (see {src.homepage} and datasets/{name}/README.md).\n"
        f"  Either run `python -m benchmark.data download {name} --raw-dir {raw_dir}` on a machine with network, "
        f"put the files in {raw_dir} yourself, or point `dataset.raw_dir=` at a folder that holds them."
    )
    return msg + (f"\n  Download failed: {reason}" if reason else "")


def ensure_raw_files(name: str, raw_dir: Path, required: tuple[tuple[str, ...], ...], allow_download: bool,
                     timeout: float = 15.0) -> None:
    """Raise DataError naming the missing files, after trying a download when `allow_download`."""
    absent = missing(name, raw_dir, required)
    if not absent:
        return
    reason = ""
    if allow_download:
        try:
            fetch(name, raw_dir, timeout=timeout)
            absent = missing(name, raw_dir, required)
            if not absent:
                return
        except DataError as exc:
            reason = str(exc)
    raise DataError(missing_message(name, raw_dir, absent, reason))


def sha256_of(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(1 << 20):
            h.update(chunk)
    return h.hexdigest()


def download_file(url: str, dest: Path, sha256: str | None = None, timeout: float = 15.0,
                  progress: bool = True) -> str:
    """Download `url` to `dest` via `dest.part`, resuming a partial `.part` with an HTTP Range request.

    The size is checked against Content-Length / Content-Range and, when `sha256` is given, the checksum; the
    file appears under its final name only when both hold. Returns the file's SHA-256.
    """
    dest = Path(dest)
    dest.parent.mkdir(parents=True, exist_ok=True)
    part = dest.with_name(dest.name + ".part")
    start = part.stat().st_size if part.exists() else 0
    headers = {"User-Agent": "mian-benchmark/1 (python urllib)"}
    if start:
        headers["Range"] = f"bytes={start}-"
    try:
        resp = urllib.request.urlopen(urllib.request.Request(url, headers=headers), timeout=timeout)
    except urllib.error.HTTPError as exc:
        if exc.code == 416 and start:  # the partial file is already complete
            resp, total = None, start
        else:
            raise DataError(f"{url}: HTTP {exc.code} {exc.reason}") from exc
    except (urllib.error.URLError, socket.timeout, OSError) as exc:
        reason = getattr(exc, "reason", exc)
        raise DataError(f"cannot reach {url} ({reason}); no network?") from exc
    if resp is not None:
        with resp:
            if start and resp.status == 206:
                content_range = resp.headers.get("Content-Range", "")  # bytes START-END/TOTAL
                if not content_range.startswith(f"bytes {start}-"):
                    raise DataError(f"{url}: unexpected Content-Range {content_range!r} for a resume at {start}")
                total_text = content_range.rsplit("/", 1)[-1]
                total = int(total_text) if total_text.isdigit() else None
                mode = "ab"
            else:  # 200: the server ignored the Range header, start over
                start, mode = 0, "wb"
                length = resp.headers.get("Content-Length")
                total = int(length) if length and length.isdigit() else None
            if start:
                log.info("resuming %s at byte %d", dest.name, start)
            with open(part, mode) as out, tqdm(total=total, initial=start, unit="B", unit_scale=True,
                                               unit_divisor=1024, desc=dest.name, disable=not progress) as bar:
                try:
                    while chunk := resp.read(1 << 20):
                        out.write(chunk)
                        bar.update(len(chunk))
                except (OSError, socket.timeout) as exc:
                    raise DataError(f"{url}: connection lost after {out.tell()} bytes ({exc}); "
                                    "run the download again to resume") from exc
    size = part.stat().st_size
    if total is not None and size != total:
        raise DataError(f"{dest.name}: got {size} of {total} bytes; run the download again to resume")
    digest = sha256_of(part)
    if sha256 and digest != sha256.lower():
        part.unlink()
        raise DataError(f"{dest.name}: SHA-256 {digest} does not match the expected {sha256}; the partial file was "
                        "removed, download it again")
    os.replace(part, dest)
    return digest


def _record_checksum(raw_dir: Path, name: str, digest: str) -> None:
    sums = raw_dir / "SHA256SUMS"
    lines = [ln for ln in (sums.read_text().splitlines() if sums.exists() else []) if not ln.endswith(f"  {name}")]
    sums.write_text("\n".join(lines + [f"{digest}  {name}"]) + "\n")


def _extract_ml1m(zip_path: Path, raw_dir: Path) -> None:
    """Extract ratings.dat, users.dat and movies.dat (flat) from ml-1m.zip, each atomically."""
    try:
        with zipfile.ZipFile(zip_path) as zf:
            for member in ("ratings.dat", "users.dat", "movies.dat"):
                tmp = raw_dir / f".{member}.extracting"
                with zf.open(f"ml-1m/{member}") as src, open(tmp, "wb") as out:
                    shutil.copyfileobj(src, out, 1 << 20)
                os.replace(tmp, raw_dir / member)
    except (zipfile.BadZipFile, KeyError) as exc:
        raise DataError(f"{zip_path} is not the ml-1m.zip expected ({exc}); delete it and download again") from exc
    for member, expected in ML1M_MEMBER_SHA256.items():
        digest = sha256_of(raw_dir / member)
        if digest != expected:
            log.warning("%s has SHA-256 %s, not the known %s", raw_dir / member, digest, expected)


def fetch(name: str, raw_dir: Path | None = None, timeout: float = 15.0, progress: bool = True) -> list[Path]:
    """Download (or finish downloading) the original files of dataset `name` into raw_dir."""
    if name not in SOURCES:
        raise DataError(f"unknown dataset {name!r}; choose one of {sorted(SOURCES)}")
    raw_dir = Path(raw_dir) if raw_dir else default_raw_dir(name)
    raw_dir.mkdir(parents=True, exist_ok=True)
    paths = []
    for remote in SOURCES[name].remote:
        dest = raw_dir / remote.name
        if dest.exists() and (remote.sha256 is None or sha256_of(dest) == remote.sha256):
            log.info("%s already present", dest)
        else:
            log.info("downloading %s -> %s", remote.url, dest)
            digest = download_file(remote.url, dest, remote.sha256, timeout=timeout, progress=progress)
            log.info("%s  %s", digest, remote.name)
            print(f"{digest}  {remote.name}  (SHA-256, recorded in {raw_dir / 'SHA256SUMS'})")
            _record_checksum(raw_dir, remote.name, digest)
        paths.append(dest)
    if name == "movielens":
        _extract_ml1m(raw_dir / "ml-1m.zip", raw_dir)
    return paths
