"""The committed MLflow stores, read straight from their archives, and the machine paths in their runs.

Each folder under results/runs/ keeps its stores as `runs.tar.gz`: one or more SQLite files (`*.db`) and their
`mlartifacts/` at the archive's root. `python -m benchmark.report --stores results/runs` extracts every archive
into a temporary folder and reads the stores that `results/runs/stores.txt` lists (one `<folder>/<file>.db` a
line; without that file, every `*.db` of every archive under the folder). A store is named by its place in the
repository, `results/runs/<folder>/<file>.db`: the file of that name in that folder's archive.

Runs record the paths of the machine that ran them (the raw-data folder, checkpoints, the store's URI in the
command). `portable_runs` rewrites them relative to the checkout that ran the job (from MLflow's
`mlflow.source.name` tag), and every store URI to the place of the store the run was read from, so the results
name no machine's folders.
"""
from __future__ import annotations

import re
import tarfile
import tempfile
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

import pandas as pd

from benchmark import PROJECT_ROOT

ARCHIVE = "runs.tar.gz"
MANIFEST = "stores.txt"


@dataclass(frozen=True)
class Store:
    place: str  # where it is in the repository, e.g. results/runs/cpu-2026-11-27/synthetic.db
    db: Path  # the extracted SQLite file
    artifacts: Path  # the folder its artifact URIs resolve against (the root of the extracted archive)


def repo_place(path: Path) -> str:
    """`path` relative to the project root when inside it, else relative to the working directory when inside
    that, else as given."""
    resolved = Path(path).resolve()
    for base in (PROJECT_ROOT, Path.cwd()):
        if resolved.is_relative_to(base.resolve()):
            return resolved.relative_to(base.resolve()).as_posix()
    return Path(path).as_posix()


def listed_stores(folder: Path) -> list[tuple[Path, str]]:
    """(archive, database file inside it) for every store under `folder` the report reads: those `stores.txt`
    lists, else every `*.db` at the root of every archive below `folder`."""
    folder = Path(folder)
    manifest = folder / MANIFEST
    if not manifest.is_file():
        found = []
        for archive in sorted(folder.rglob(ARCHIVE)):
            with tarfile.open(archive) as tar:
                names = sorted(name.removeprefix("./") for name in tar.getnames())
                found += [(archive, name) for name in names if "/" not in name and name.endswith(".db")]
        if not found:
            raise ValueError(f"there is no {ARCHIVE} holding a *.db file under {folder}")
        return found
    listed = []
    for number, line in enumerate(manifest.read_text().splitlines(), 1):
        entry = line.split("#", 1)[0].strip()
        if not entry:
            continue
        store = PurePosixPath(entry)
        archive = folder / store.parent / ARCHIVE
        if store.suffix != ".db" or store.is_absolute() or ".." in store.parts or not archive.is_file():
            raise ValueError(f"{manifest}:{number}: {entry!r} is not <folder>/<file>.db of a folder with {ARCHIVE}")
        listed.append((archive, store.name))
    return listed


@contextmanager
def extracted_stores(folder: Path) -> Iterator[list[Store]]:
    """The stores under `folder` (`listed_stores`), each archive extracted once into a temporary folder that is
    removed on leaving the block."""
    stores = listed_stores(folder)
    with tempfile.TemporaryDirectory(prefix="mian-stores-") as tmp:
        roots: dict[Path, Path] = {}
        found = []
        for archive, name in stores:
            if archive not in roots:
                roots[archive] = Path(tmp) / str(len(roots))
                safe = {"filter": "data"} if hasattr(tarfile, "data_filter") else {}  # Python >= 3.10.12
                try:
                    with tarfile.open(archive) as tar:
                        tar.extractall(roots[archive], **safe)
                except tarfile.TarError as error:
                    raise ValueError(f"{archive} is not a readable archive: {error}") from error
            db = roots[archive] / name
            if not db.is_file():
                raise ValueError(f"{archive} holds no {name} at its root")
            found.append(Store(f"{repo_place(archive.parent)}/{name}", db, roots[archive]))
        yield found


def artifact_file(artifact_uri: str, artifacts: Path, name: str) -> Path | None:
    """Where a run's artifact `name` is in an extracted archive: its artifact URI (an absolute path of the
    machine that ran it, `.../mlartifacts/<run>/artifacts`) taken from `mlartifacts/` on, under `artifacts`."""
    parts = PurePosixPath(artifact_uri.removeprefix("file://")).parts
    if "mlartifacts" not in parts:
        return None
    start = len(parts) - 1 - parts[::-1].index("mlartifacts")
    return artifacts.joinpath(*parts[start:], name)


# ------------------------------------------------------------------------------------------ portable paths
SQLITE_URI = re.compile(r"(sqlite(?:\\{1,2})?:///)(/[^\s'\"`]+)")


def checkout_of(source_name: str) -> PurePosixPath | None:
    """The checkout a job ran in, from its `mlflow.source.name` tag (`<checkout>/benchmark/__main__.py`)."""
    path = PurePosixPath(source_name)
    if not path.is_absolute() or "benchmark" not in path.parts[1:]:
        return None
    return PurePosixPath(*path.parts[:len(path.parts) - 1 - path.parts[::-1].index("benchmark")])


def _under(folder: PurePosixPath, replacement: str, text: str) -> str:
    """Every path at or under `folder` in `text`, with `folder` written as `replacement`."""
    pattern = re.compile(r"(?<![\w./-])" + re.escape(str(folder)) + r"(?![\w.-])(/?)")
    return pattern.sub(lambda m: replacement + m.group(1) if replacement != "." or not m.group(1) else "", text)


def portable_text(text: str, checkout: PurePosixPath | None, store: str | None = None) -> str:
    """`text` with the machine's paths made relative: a SQLite URI whose file is the store's own (same name) names
    the store's place; other paths inside the checkout are relative to it, paths beside it start with `../`."""
    def uri(match: re.Match[str]) -> str:
        path = PurePosixPath(match.group(2))
        if store is not None and path.name == PurePosixPath(store).name:
            return match.group(1) + store
        return match.group(1) + (portable_text(str(path), checkout) if checkout else str(path))

    text = SQLITE_URI.sub(uri, text)
    if checkout is None or len(checkout.parts) < 2:
        return text
    text = _under(checkout, ".", text)
    if len(checkout.parent.parts) >= 2:
        text = _under(checkout.parent, "..", text)
    return text


def portable_runs(runs: pd.DataFrame, store: str | None = None) -> pd.DataFrame:
    """The params and tags of `runs` (one store's) through `portable_text`, each run against its own checkout
    (a run without the tag, e.g. a sweep's parent, against the store's most common one)."""
    sources = runs["tags.mlflow.source.name"] if "tags.mlflow.source.name" in runs else pd.Series("", index=runs.index)
    checkouts = [checkout_of(str(s or "")) for s in sources]
    common = Counter(c for c in checkouts if c is not None).most_common(1)
    fallback = common[0][0] if common else None
    checkouts = [c or fallback for c in checkouts]
    runs = runs.copy()
    for column in [c for c in runs.columns if c.startswith(("params.", "tags."))]:
        runs[column] = [portable_text(v, c, store) if isinstance(v, str) else v
                        for v, c in zip(runs[column], checkouts)]
    return runs


def main(argv: list[str] | None = None) -> int:
    """`python -m benchmark.stores FILE...`: rewrite sweep logs in place with this checkout's paths relative
    (`portable_text`), before committing them under results/runs/."""
    import sys

    files = list(sys.argv[1:] if argv is None else argv)
    checkout = PurePosixPath(PROJECT_ROOT.as_posix())
    for name in files:
        path = Path(name)
        text = path.read_text()
        cleaned = portable_text(text, checkout)
        if cleaned != text:
            path.write_text(cleaned)
            print(f"{path}: {sum(a != b for a, b in zip(text.splitlines(), cleaned.splitlines()))} lines rewritten")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
