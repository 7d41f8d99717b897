"""Every model of the suite, found by name (`model=<name>`): one ModelSpec each (models/spec.py), in the tables'
order. The suite's model lists (benchmark/names.py), the tables' labels, C6's sequential and non-sequential
models, the Hydra schema entries (benchmark/config/schema.py) and the tests' parametrisation all derive from it.
An unknown name is an error that lists the known ones, never a fall-through.

The DeepCTR-Torch baselines are declared in models/baselines.py; MIAN and the calibrated benchmark's controls
here. Importing this loads no torch."""
from __future__ import annotations

from models import options
from models.baselines import BASELINES
from models.spec import Family, ModelSpec

NATIVE: tuple[ModelSpec, ...] = (
    ModelSpec("mian", "MIAN", options.MIAN, "native", "models.mian:build"),
)
# The calibrated effects benchmark's controls (models/controls.py): small models of the suite's own, each built
# for one form of planted effect; not rows of the paper's tables.
CONTROLS: tuple[ModelSpec, ...] = tuple(
    ModelSpec(cls.NAME, label, cls, "control", "models.controls:build", paper=False)
    for cls, label in ((options.FM, "FM"), (options.MaxSim, "max-similarity"),
                       (options.ProductAttn, "product attention"), (options.TensorFact, "tensor factorisation"))
)

REGISTRY: dict[str, ModelSpec] = {s.name: s for s in (*BASELINES, *NATIVE, *CONTROLS)}
assert len(REGISTRY) == len(BASELINES) + len(NATIVE) + len(CONTROLS), "two models share a name"
assert all(s.options.NAME == s.name for s in REGISTRY.values()), "a model's options class names another model"
options.REGISTERED[:] = REGISTRY  # what the check of model.name allows (models/options.py)


def spec(name: str) -> ModelSpec:
    """The model called `name`; a clear error naming the known ones otherwise."""
    try:
        return REGISTRY[str(name)]
    except KeyError:
        raise ValueError(f"model.name={name!r} is unknown: the registered models are {', '.join(REGISTRY)} "
                         "(models/registry.py; a DeepCTR-Torch baseline is added in models/baselines.py)") from None


def names(family: Family | None = None, *, paper: bool | None = None, sequential: bool | None = None) -> tuple[str, ...]:
    """The names of the registered models that match every given filter, in the registry's order."""
    return tuple(s.name for s in REGISTRY.values()
                 if (family is None or s.family == family) and (paper is None or s.paper == paper)
                 and (sequential is None or s.sequential == sequential))


def labels() -> dict[str, str]:
    return {s.name: s.label for s in REGISTRY.values()}
