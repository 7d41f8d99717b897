"""`python -m benchmark.report`: regenerate results/ (Tables 2-4, efficiency, Figures 5-6) from MLflow alone.

The command, its options and what it writes: cli.py. The package, in layers (each imports only the layers below
it; `lint-imports` checks them, pyproject.toml):

- on top, cli.py: the command (`main`), the list of tables (TABLES) and the report that writes each;
- one module per table, none importing another: tuning.py, table2.py, table3.py, table4.py, efficiency.py,
  effects/ (mechanisms.py: the calibrated data; synthetic.py: the first generator), readings.py and verdict/;
  each holds its rows and columns, its Markdown, its figures and its declaration (TABLE, a TableSpec);
- beneath them what they share: sections.py (the sections of Tables 2-4) and significance.py (their tests);
  spec.py (TableSpec, Context, Part, Built, Row, Section) and figures.py (curves per dataset); provenance.py and
  text.py (number cells, Markdown tables, CSV text); runs.py (reads the runs into records), stats.py (the
  statistics) and names.py (labels and orders).

This module re-exports the names callers use (`from benchmark.report import main, holm, ...`).
"""
from __future__ import annotations

from benchmark.report.cli import TABLES, build_report, main  # noqa: F401 - re-exported
from benchmark.report.effects import (  # noqa: F401 - re-exported
    controls_frame, controls_markdown, effects_frame, effects_markdown,
)
from benchmark.report.efficiency import efficiency_frame, efficiency_markdown  # noqa: F401 - re-exported
from benchmark.report.names import (  # noqa: F401 - re-exported: `from benchmark.report import DATASETS`
    ABLATION_LABELS, ABLATIONS, AMAZON, ARM_LABELS, CONTROL_ARMS, DATASET_ARGS, DATASET_LABELS, DATASETS, DIAGNOSTICS,
    EFFECT_CONTROLS, EFFECT_MODULE, EFFECT_VARIANTS, EFFECTS, ENCODER_LABELS, ENCODERS, INTERACTIONS, LEARNED_MARGIN,
    METRICS, MODEL_LABELS, MODELS, PAPER_DATASET, PAPER_DATASET_LABELS, PAPER_ENCODER, ordered, present_in_order,
)
from benchmark.report.provenance import Provenance, provenance  # noqa: F401 - re-exported
from benchmark.report.readings import readings_frame, readings_markdown  # noqa: F401 - re-exported
from benchmark.report.runs import (  # noqa: F401 - re-exported
    EXPERIMENTS, PAPER_DIR, RunData, gim_long, job_records, left_out_message, merge, read_export, read_mlflow,
    read_paper, read_sources, runs_left_out, write_atomic, write_export,
)
from benchmark.report.sections import power_line, section_frame, section_markdown  # noqa: F401 - re-exported
from benchmark.report.significance import significance_csv, tests_frame  # noqa: F401 - re-exported
from benchmark.report.spec import Context, TableSpec, table_csv, table_markdown  # noqa: F401 - re-exported
from benchmark.report.stats import (  # noqa: F401 - re-exported
    ALPHA, POWER, Comparison, bootstrap_interval, holm, mean_std, pooled_std, seeds_needed, welch, welch_interval,
)
from benchmark.report.table2 import table2_section  # noqa: F401 - re-exported
from benchmark.report.table3 import table3_section  # noqa: F401 - re-exported
from benchmark.report.table4 import table4_section  # noqa: F401 - re-exported
from benchmark.report.text import (  # noqa: F401 - re-exported
    csv_text, fmt, fmt_interval, fmt_p, fmt_p_holm, md_table,
)
