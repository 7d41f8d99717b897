"""results/effects.md: does each MIAN module model the effect it is meant to? Two parts, one per generator of
synthetic data with planted effects: the calibrated mechanisms (mechanisms.py: lift captured behind each cell's
gate of controls) and the first generator's (synthetic.py: ablations and controls against the oracle)."""
from __future__ import annotations

from benchmark.report.effects.mechanisms import gate_frame, gate_markdown, lift_frame, mechanisms_markdown
from benchmark.report.effects.synthetic import controls_frame, controls_markdown, effects_frame, effects_markdown
from benchmark.report.spec import Built, Context, Part, TableSpec, data_text

__all__ = ["TABLE", "build_effects", "controls_frame", "controls_markdown", "effects_frame", "effects_head",
           "effects_markdown", "effects_template"]


def build_effects(ctx: Context, spec: TableSpec) -> Built | None:
    used = spec.reads(ctx)
    if not len(used):
        return None
    parts, files = [], {}
    mechanisms = used[used["dataset"] == "calibrated"]
    if len(mechanisms):  # the calibrated data (mechanisms.py): lift captured behind each cell's gate
        gates = gate_frame(ctx.records)
        parts.append(Part(lift_frame(ctx.records), dataset="calibrated", data=data_text(mechanisms),
                          extra={"gates": gates}))
        files["effects_gate"] = gates
    legacy = used[used["dataset"] != "calibrated"]
    if len(legacy):  # the first generator's runs (benchmark/data/synthetic.py)
        controls = controls_frame(ctx.records)
        parts.append(Part(effects_frame(ctx.records), data=data_text(legacy), extra={"controls": controls}))
        if len(controls):
            files["effects_controls"] = controls
    return Built(parts, used, files=files)


def effects_head(parts: list[Part]) -> str:
    """The verdict in words at the top of effects.md: each calibrated cell's gate, then the first generator's
    controls."""
    return "".join(gate_markdown(p.extra["gates"]) + "\n" if "gates" in p.extra
                   else controls_markdown(p.extra["controls"])[0] + "\n" for p in parts)


def effects_template(part: Part) -> str:
    if "gates" in part.extra:
        return mechanisms_markdown(part.extra["gates"], part.frame, part.data)
    return effects_markdown(part.frame, part.data) + "\n" + controls_markdown(part.extra["controls"])[1]


TABLE = TableSpec("effects", "Does each MIAN module model the effect it is meant to? (synthetic, one planted effect "
                  "at a time)", reads=lambda ctx: ctx.table("effects"), build=build_effects,
                  template=effects_template, head=effects_head)
