"""The efficiency benchmark (benchmark/bench.py): it runs end to end and writes its tables. Speed itself is
measured by the benchmark, never asserted here (results/efficiency/)."""
from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest
import torch

from benchmark import bench
from models.deepctr_adapter import build_library_net


def test_bench_writes_a_table_per_machine_with_every_variant(tmp_path: Path) -> None:
    csv_path, md_path = bench.main(["--models", "din,mian", "--batch-sizes", "16", "--steps", "2", "--repeats", "2",
                                    "--compile-models", "none", "--device", "cpu", "--out", str(tmp_path)])
    assert csv_path.parent == md_path.parent == tmp_path and csv_path.stem == md_path.stem
    assert not list(tmp_path.glob(".*.tmp"))  # written atomically, no temporary left
    frame = pd.read_csv(csv_path, comment="#")
    assert sorted(zip(frame["model"], frame["variant"])) == [("din", "eager"), ("din", "fit"), ("mian", "eager")]
    assert (frame["ms_per_step"] > 0).all() and (frame["batch_size"] == 16).all()
    din = frame[frame["model"] == "din"].set_index("variant")
    ratio = din.loc["fit", "ms_per_step"] / din.loc["eager", "ms_per_step"]
    assert abs(din.loc["eager", "speedup_vs_fit"] / ratio - 1) < 1e-4  # the CSV keeps 6 significant digits
    books = frame["ms_per_step"] * -(-8_900_038 // 16) / 1e3
    assert ((frame["books_epoch_s"] - books).abs() <= 1e-4 * books).all()
    header = csv_path.read_text().splitlines()[0]
    assert header.startswith("# cpu: ")
    text = md_path.read_text()
    assert "python -m benchmark.bench --models din,mian" in text and "## Targets" in text and "DIN at batch 16" in text
    assert "CAUTION: 2 steps x 2 timed epochs" in text  # 4 timed steps: a verdict that says how little it rests on


def test_fit_inputs_feed_every_column_of_the_library_model(compose_cfg) -> None:
    dataset = bench.with_train_rows(bench.synthetic_rows(40), 40)
    for model in ("din", "dien", "xdeepfm"):
        cfg = compose_cfg(f"model={model}")
        x = bench.fit_inputs(cfg.model, dataset.schema, dataset.dense("train"))
        net = build_library_net(cfg.model, dataset.schema, torch.device("cpu"))
        assert set(x) == set(net.feature_index)
        assert all(len(v) == 40 for v in x.values())


def test_machine_slug_is_a_file_name() -> None:
    slug = bench.machine_slug(torch.device("cpu"))
    assert slug.startswith("cpu-") and slug.replace("-", "").isalnum()


def test_bench_keeps_an_earlier_measurement_unless_forced(tmp_path: Path, capsys) -> None:
    earlier = tmp_path / f"{bench.machine_slug(torch.device('cpu'))}.md"
    earlier.write_text("an earlier measurement of all eight models\n")
    args = ["--models", "lr", "--batch-sizes", "8", "--steps", "1", "--repeats", "1", "--device", "cpu",
            "--out", str(tmp_path)]
    with pytest.raises(SystemExit) as exit_info:
        bench.main(args)
    assert "already exist: pass --force" in str(exit_info.value.code)
    assert earlier.read_text() == "an earlier measurement of all eight models\n"
    _, md_path = bench.main([*args, "--force"])
    assert md_path == earlier and "--models lr" in earlier.read_text()


@pytest.mark.parametrize("bad, message", [(["--batch-sizes", "abc"], "comma-separated integers"),
                                          (["--threads", "-3"], "--threads -3"),
                                          (["--models", "nosuch"], "unknown models")])
def test_bench_rejects_bad_arguments_with_a_message(bad: list[str], message: str, capsys) -> None:
    with pytest.raises(SystemExit) as exit_info:
        bench.parse_args(bad)
    assert exit_info.value.code == 2 and message in capsys.readouterr().err
