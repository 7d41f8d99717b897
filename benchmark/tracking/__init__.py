"""MLflow tracking: where the store is, one run per job, and what every run records.

    store.py      the store's URI, retries under concurrent SQLite writers, the experiment and its UI view
    runlog.py     RunLog: a run's logging sent from a journal without making training wait; replay
    ghosts.py     the process owning a run, and ghost runs (RUNNING with no live owner): found and ended
    artifacts.py  the resolved config, the dataset and the model of a run
    record.py     RunRecord: a run's identity (experiment, dataset, model, protocol, ...), its tags and back
    cli.py        `python -m benchmark.tracking replay|reap`

The git commit a run records is benchmark/machine.py's (re-exported here); the default store is
benchmark/paths.py's `default_db()`.
"""
from benchmark.machine import COMMIT_ENV, git_commit
from benchmark.paths import default_db
from benchmark.tracking.artifacts import MODEL_NAME, dataset_digest, flatten, log_config, log_dataset, log_model
from benchmark.tracking.cli import main
from benchmark.tracking.ghosts import (OWNER_TAGS, end_replaced_run, ghost_runs, is_orphaned, owner_tags,
                                       process_start, reap_ghosts)
from benchmark.tracking.record import RunRecord
from benchmark.tracking.runlog import (PENDING_DIR, REQUEST_TIMEOUT_S, RETRY_INTERVAL_S, RunLog, TrackingBacklog,
                                       drop_active_run, is_http, read_journal, replay)
from benchmark.tracking.store import (COMPARISON_COLUMNS, COMPARISON_VIEW, EXPERIMENT_KIND, FAIL_FAST_HTTP,
                                      TrackingError, artifact_location, comparison_url, dashboard_hint, end_run,
                                      log_metrics, log_params, log_text, mlflow_executable, prepare_experiment,
                                      resolve_tracking_uri, retrying, set_tags, sqlite_path)

__all__ = [
    "COMMIT_ENV", "COMPARISON_COLUMNS", "COMPARISON_VIEW", "EXPERIMENT_KIND", "FAIL_FAST_HTTP", "MODEL_NAME",
    "OWNER_TAGS", "PENDING_DIR", "REQUEST_TIMEOUT_S", "RETRY_INTERVAL_S", "RunLog", "RunRecord", "TrackingBacklog",
    "TrackingError", "artifact_location", "comparison_url", "dashboard_hint", "dataset_digest", "default_db",
    "drop_active_run", "end_replaced_run", "end_run", "flatten", "ghost_runs", "git_commit", "is_http",
    "is_orphaned", "log_config", "log_dataset", "log_metrics", "log_model", "log_params", "log_text", "main",
    "mlflow_executable", "owner_tags", "prepare_experiment", "process_start", "read_journal", "reap_ghosts",
    "replay", "resolve_tracking_uri", "retrying", "set_tags", "sqlite_path",
]
