"""benchmark/stores.py: the report reads stores straight from their archives, and writes no machine's paths."""
from __future__ import annotations

import tarfile
from pathlib import Path, PurePosixPath

import pandas as pd
import pytest
from mlflow.tracking import MlflowClient

from benchmark.report import main
from benchmark.stores import artifact_file, checkout_of, listed_stores, portable_runs, portable_text
from test_report import log_run

CHECKOUT = PurePosixPath("/home/alice/mian")


def test_paths_become_relative_to_the_checkout_that_ran_the_job() -> None:
    text = ("python -m benchmark dataset.raw_dir=/home/alice/mian/.mldata 'tracking.uri=sqlite\\:////home/alice/"
            "gpu-runs/table2.db' data=/home/alice/shared/ml-1m in /home/alice/mian; /home/alice/mian2/x /opt/y")
    assert portable_text(text, CHECKOUT, "results/runs/h200/table2.db") == (
        "python -m benchmark dataset.raw_dir=.mldata 'tracking.uri=sqlite\\:///results/runs/h200/table2.db' "
        "data=../shared/ml-1m in .; ../mian2/x /opt/y")
    # a URI of another store: relative to the checkout like any path
    assert portable_text("tracking.uri=sqlite:////home/alice/mian/results/x/mlflow.db", CHECKOUT, "a/table2.db") \
        == "tracking.uri=sqlite:///results/x/mlflow.db"
    assert portable_text("/home/alice/mian/x", None) == "/home/alice/mian/x"  # no checkout known: unchanged


def test_each_run_against_its_own_checkout() -> None:
    assert checkout_of("/home/alice/mian/benchmark/__main__.py") == CHECKOUT
    assert checkout_of("benchmark/__main__.py") is None
    runs = pd.DataFrame({"tags.mlflow.source.name": ["/home/alice/mian/benchmark/__main__.py", None],
                         "params.dataset.raw_dir": ["/home/alice/mian/.mldata", "/home/alice/shared/d"],
                         "metrics.test_auc": [0.7, 0.8]})
    portable = portable_runs(runs, "results/runs/x/mlflow.db")
    assert list(portable["params.dataset.raw_dir"]) == [".mldata", "../shared/d"]  # the parent: the store's checkout
    assert portable["tags.mlflow.source.name"].iloc[0] == "benchmark/__main__.py"
    assert list(portable["metrics.test_auc"]) == [0.7, 0.8]


def test_artifacts_resolve_inside_the_extracted_archive(tmp_path: Path) -> None:
    uri = "file:///work/cpu-runs/mlartifacts/abc/artifacts"
    assert artifact_file(uri, tmp_path, "gim_weights.csv") == tmp_path / "mlartifacts/abc/artifacts/gim_weights.csv"
    assert artifact_file("s3://bucket/abc", tmp_path, "x") is None


def pack(folder: Path, archive: Path) -> None:
    """`folder`'s contents at the root of `archive`, as the committed runs.tar.gz are."""
    archive.parent.mkdir(parents=True, exist_ok=True)
    with tarfile.open(archive, "w:gz") as tar:
        for path in sorted(folder.iterdir()):
            tar.add(path, arcname=path.name)


def test_the_report_reads_archived_stores(tmp_path: Path) -> None:
    stores = tmp_path / "runs"
    for first, (name, auc) in enumerate((("one", 0.70), ("two", 0.72))):
        src = tmp_path / "src" / name
        src.mkdir(parents=True)
        client = MlflowClient(f"sqlite:///{src / f'{name}.db'}")
        exp = client.create_experiment(name, artifact_location=(src / "mlartifacts").as_uri())
        for seed in (2 * first, 2 * first + 1):
            run_id = log_run(client, exp, "table2", "synthetic", "mian", seed, {"test_auc": auc + seed / 100})
            client.log_text(run_id, "test_index,e_i,R_ibim,label,prob\n3,0.25,0.75,1.0,0.6\n", "gim_weights.csv")
        pack(src, stores / name / "runs.tar.gz")
    (stores / "empty").mkdir()  # a folder without an archive is not a store
    assert [name for _, name in listed_stores(stores)] == ["one.db", "two.db"]
    out = tmp_path / "results"
    assert main(["--stores", str(stores), "--out", str(out)]) == 0
    text = (out / "table2.md").read_text()
    assert f"MLflow store {stores.as_posix()}/one/one.db + MLflow store {stores.as_posix()}/two/two.db (4 runs)" in text
    gim = pd.read_csv(out / "export" / "gim_weights.csv")
    assert gim["run_id"].nunique() == 4  # every run's GIM weights, from the extracted artifacts
    # with a list, only the stores it names
    (stores / "stores.txt").write_text("# the first only\none/one.db\n")
    assert main(["--stores", str(stores), "--out", str(tmp_path / "only"), "--force"]) == 0
    assert "(2 runs)" in (tmp_path / "only" / "table2.md").read_text()
    (stores / "stores.txt").write_text("three/three.db\n")
    with pytest.raises(ValueError, match="stores.txt:1"):
        listed_stores(stores)
