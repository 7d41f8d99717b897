"""The paper's claims, each as the comparisons ("parts") it is made of, with the paper's own size of each part, and
the primary family declared in conf/verdict/primary.yaml.

A part is `a - b` in mean test AUC, the claim's direction positive. A claim of several parts (a conjunction:
C2, C5, C6) holds only if every part does and is refuted by any one part significantly against it.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd
from omegaconf import OmegaConf

from benchmark import CONFIG_DIR
from benchmark.report.names import (
    ABLATION_LABELS, ENCODER_LABELS, MODEL_LABELS, NON_SEQUENTIAL, PAPER_BASELINES, PAPER_ENCODER, SEQUENTIAL,
)

PRIMARY_FILE = CONFIG_DIR / "verdict" / "primary.yaml"
BASELINES = PAPER_BASELINES  # the paper's claims are about its own baselines, not ones added to the suite
CLAIMS = {
    "C1": "MIAN beats the best baseline",
    "C2": "removing IBIM costs more than removing any other module",
    "C3": "removing IUIM & ICIM costs AUC",
    "C4": "removing GIM costs AUC",
    "C5": "Pre-LN > Post-LN > no Transformer",
    "C6": "DIN and DIEN beat the non-sequential models",
}
# The other settings of the paper's Table 3 that removing IBIM must cost more than (Section 4.7.1: "hurts the
# performance of MIAN most among all the settings").
C2_OTHERS = ("no_iuim", "no_icim", "no_gim", "no_iuim_icim")


@dataclass(frozen=True)
class Arm:
    """One side of a comparison: a model, and for MIAN its ablation and behaviour encoder."""
    model: str
    variant: str = "full"
    encoder: str = "pre_ln"

    @property
    def label(self) -> str:
        if not self.model:
            return "the best baseline"
        if self.model != "mian":
            return MODEL_LABELS.get(self.model, self.model)
        if self.variant != "full":
            return ABLATION_LABELS.get(self.variant, self.variant)
        return "MIAN" if self.encoder == "pre_ln" else f"MIAN, {ENCODER_LABELS.get(self.encoder, self.encoder)}"

    def runs(self, column: pd.DataFrame, reading: str) -> pd.DataFrame:
        """This arm's runs among a column's (one dataset and protocol); MIAN's under `reading`."""
        mine = column[column["model"] == self.model]
        if self.model != "mian":
            return mine
        mine = mine[(mine["reading"] == reading) & (mine["variant"] == self.variant)]
        return mine[mine["encoder"].isin([self.encoder, ""])] if self.variant == "full" else mine


@dataclass(frozen=True)
class PartSpec:
    a: Arm
    b: Arm
    note: str = ""  # e.g. how b was chosen

    @property
    def label(self) -> str:
        return f"{self.a.label} − {self.b.label}" + (f" ({self.note})" if self.note else "")


@dataclass(frozen=True)
class Primary:
    """conf/verdict/primary.yaml: per real dataset the paper dataset it stands for and its primary claims."""
    protocol: str
    reading: str
    paper_dataset: dict[str, str]
    claims: dict[str, tuple[str, ...]]
    also_shown: dict[str, str] = field(default_factory=dict)

    @property
    def datasets(self) -> tuple[str, ...]:
        return tuple(self.paper_dataset)

    def applies(self, claim: str, dataset: str) -> bool:
        return claim in self.claims.get(dataset, ())


def load_primary(path: Path = PRIMARY_FILE) -> Primary:
    raw = OmegaConf.to_container(OmegaConf.load(Path(path)))
    datasets = raw["datasets"]
    unknown = {c for d in datasets.values() for c in d["claims"]} - set(CLAIMS)
    if unknown:
        raise ValueError(f"{path}: unknown claims {sorted(unknown)} (known: {', '.join(CLAIMS)})")
    return Primary(str(raw["protocol"]), str(raw.get("reading") or ""),
                   {name: str(d["paper_dataset"]) for name, d in datasets.items()},
                   {name: tuple(d["claims"]) for name, d in datasets.items()},
                   {name: str(d["also_shown"]) for name, d in datasets.items() if d.get("also_shown")})


def best_on_validation(column: pd.DataFrame, models: tuple[str, ...]) -> str:
    """The model of `models` with the best mean validation AUC (best_val_auc) among a column's runs that learned:
    chosen before any test result is read. '' when none has runs (an arm without runs: the part is not tested)."""
    runs = column[column["model"].isin(models) & (column["learned"] != "false")]
    means = runs.groupby("model")["best_val_auc"].mean().dropna()
    return str(means.idxmax()) if len(means) else ""


def parts_of(claim: str, column: pd.DataFrame) -> list[PartSpec]:
    """The comparisons a claim is made of on one column's runs (C1's baseline picked on validation AUC)."""
    mian = Arm("mian")
    if claim == "C1":
        return [PartSpec(mian, Arm(best_on_validation(column, BASELINES)), "best on validation AUC")]
    if claim == "C2":
        return [PartSpec(Arm("mian", other), Arm("mian", "no_ibim")) for other in C2_OTHERS]
    if claim == "C3":
        return [PartSpec(mian, Arm("mian", "no_iuim_icim"))]
    if claim == "C4":
        return [PartSpec(mian, Arm("mian", "no_gim"))]
    if claim == "C5":
        post, none = Arm("mian", encoder="post_ln"), Arm("mian", encoder="none")
        return [PartSpec(mian, post), PartSpec(post, none)]
    if claim == "C6":
        return [PartSpec(Arm(s), Arm(n)) for s in SEQUENTIAL for n in NON_SEQUENTIAL]
    raise ValueError(f"unknown claim {claim}")


def paper_auc(paper: pd.DataFrame, paper_dataset: str, arm: Arm) -> float:
    """The paper's test AUC for an arm on one of its datasets (Table 2 for models, 3 for ablations, 4 for
    encoders), NaN where it reports none."""
    if arm.model != "mian":
        keys = [("2", arm.model, "")]
    elif arm.variant != "full":
        keys = [("3", "mian", arm.variant)]
    elif arm.encoder != "pre_ln":
        keys = [("4", "mian", PAPER_ENCODER.get(arm.encoder, arm.encoder))]
    else:
        keys = [("2", "mian", ""), ("3", "mian", "full"), ("4", "mian", "pre_ln")]
    for table, model, variant in keys:
        match = paper[(paper["table"] == table) & (paper["dataset"] == paper_dataset) & (paper["model"] == model)
                      & (paper["variant"] == variant)]
        if len(match):
            return float(match["auc"].iloc[0])
    return math.nan


def paper_effect(paper: pd.DataFrame, paper_dataset: str, claim: str, part: PartSpec) -> float:
    """The paper's size of a part: its a - b; for C1, MIAN minus the paper's own best baseline (the claim as the
    paper sized it, whichever baseline our validation picks)."""
    if claim == "C1":
        rows = paper[(paper["table"] == "2") & (paper["dataset"] == paper_dataset)
                     & paper["model"].isin(BASELINES)]
        best = float(rows["auc"].max()) if len(rows) else math.nan
        return paper_auc(paper, paper_dataset, part.a) - best
    return paper_auc(paper, paper_dataset, part.a) - paper_auc(paper, paper_dataset, part.b)
