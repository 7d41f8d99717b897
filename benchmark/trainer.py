"""The one training loop every model goes through (same optimiser, regularisation, batching, early stopping,
metrics and timing), so that the comparison between models is fair.

Batching: the whole dataset lives on the device; each epoch draws a permutation from a generator seeded by
(seed, epoch) and gathers batches by index there. Every step has exactly `batch_size` examples: the last,
partial batch is filled up with examples from the start of the same permutation (so every example is seen at
least once per epoch and the step shape is static, which CUDA-graph capture needs).

Loss = mean BCE-with-logits + l2 * Σ‖w‖² over the regularised parameters + the model's `extra_loss()` where it
has one (DIEN's auxiliary loss). Embedding tables get `trainer.l2_embedding` (default 0: a dense L2 gradient on
all rows shrinks the rows of items absent from the batch at every step; DeepCTR-Torch's own default is 1e-5 or
1e-6 on whole tables, which the library protocol uses). Which of the other parameters are
(`trainer.l2_scope`, `regularised_parameters`): `dense`, every one of them (biases, LayerNorm gains and position
tables included); `kernels`, weight matrices only. How (`trainer.weight_decay`): `coupled`, the L2 term's
gradient 2 * l2 * w inside Adam (Adam's `weight_decay`, fused into the optimiser kernel; Adam then rescales it
like any gradient, so a parameter with small data gradients is pulled to zero at about lr per step);
`decoupled`, AdamW's decay w <- w - lr * 2 * l2 * w, outside Adam's rescaling (Loshchilov & Hutter).

Speed (README "Speed"): the step never synchronises with the host (the loss is summed on the device and read
once per epoch); on CUDA the whole step (gather, forward, backward, Adam fused and capturable) is captured as
one CUDA graph and replayed (`trainer.cuda_graph`), unless the model cannot be captured, which is logged and
runs eager; `trainer.compile=true` adds torch.compile to the training forward; `trainer.amp=bf16` autocasts.
"""
from __future__ import annotations

import copy
import math
import sys
import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
from omegaconf import DictConfig
from torch import Tensor, nn
from tqdm import tqdm

from benchmark.batches import device_splits, model_inputs
from benchmark.data.schema import Dataset
from benchmark.diagnostics import base_rate_entropy, diagnose, probe_index
from benchmark.metrics import evaluate
from benchmark.names import L2_SCOPES, WEIGHT_DECAYS

EpochCallback = Callable[[int, dict[str, float]], None]
WARMUP_STEPS = 3  # eager steps before the CUDA-graph capture (first epoch only)


class NonFiniteLossError(RuntimeError):
    """The training loss became NaN or infinite: the job stops rather than train on garbage."""


class StopTraining(Exception):
    """Raised by an `on_epoch_end` callback to end the fit after this epoch, as early stopping would (a tuning
    trial pruned on its validation AUC, benchmark/tune.py)."""


def select_device(requested: str) -> torch.device:
    """`auto` picks CUDA when present, else CPU; an explicit device that is not there is an error."""
    if requested == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    device = torch.device(requested)
    if device.type == "cuda" and not torch.cuda.is_available():
        raise ValueError(f"trainer.device={requested!r} but CUDA is not available here; use trainer.device=auto or cpu")
    return device


def synchronize(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def reset_cuda_rng_after_failed_capture(device: torch.device, seed: int) -> None:
    """A capture that fails part-way leaves the device's default CUDA generator in capture mode, and every later
    random op of the process (dropout, even `nn.init` of the next model) then fails with "Offset increment
    outside graph capture". Give the generator a fresh state, seeded from `seed`, so the process goes on eager;
    if that is impossible, stop with a message that says how to avoid the capture."""
    index = device.index if device.index is not None else torch.cuda.current_device()
    generator = torch.cuda.default_generators[index]
    try:
        fresh = torch.Generator(device=device)
        fresh.manual_seed(seed)
        generator.graphsafe_set_state(fresh.graphsafe_get_state())
        torch.rand(1, device=device)  # the generator works again, or this raises
    except RuntimeError as error:
        raise RuntimeError(
            f"the CUDA-graph capture failed and left the CUDA random generator unusable ({error}); "
            "rerun this job with trainer.cuda_graph=false"
        ) from error


def _flag(value: Any) -> bool:
    """A true/false config value given as a YAML bool or as a string (`true`, `False`, ...)."""
    return str(value).lower() == "true"




def embedding_ids(model: nn.Module) -> set[int]:
    """The ids of the model's embedding tables (nn.Embedding weights)."""
    return {id(m.weight) for m in model.modules() if isinstance(m, nn.Embedding)}


def dense_parameters(model: nn.Module) -> list[Tensor]:
    """Every trainable parameter but the embedding tables."""
    tables = embedding_ids(model)
    return [p for p in model.parameters() if p.requires_grad and id(p) not in tables]


def regularised_parameters(model: nn.Module, scope: str = "dense") -> list[Tensor]:
    """The parameters that get the L2 penalty: `dense`, all but embedding tables; `kernels`, only the weight
    matrices among those (two or more dimensions: no biases, LayerNorm gains, PReLU/Dice slopes, and no position
    tables, which are embeddings by another name)."""
    if scope not in L2_SCOPES:
        raise ValueError(f"trainer.l2_scope={scope!r} is not one of {L2_SCOPES}")
    dense = dense_parameters(model)
    if scope == "dense":
        return dense
    positions = {id(p) for name, p in model.named_parameters() if name.split(".")[-1] == "positions"}
    return [p for p in dense if p.dim() >= 2 and id(p) not in positions]


def epoch_permutation(n: int, batch_size: int, seed: int, epoch: int, device: torch.device) -> Tensor:
    """Indices for one epoch, length steps * batch_size; depends only on (seed, epoch), so a resumed run
    sees the same order as an uninterrupted one."""
    generator = torch.Generator(device=device).manual_seed(seed * 1_000_003 + epoch)
    perm = torch.randperm(n, generator=generator, device=device)
    steps = math.ceil(n / batch_size)
    fill = steps * batch_size - n
    return torch.cat([perm, perm[:fill]]) if fill else perm


@dataclass
class FitResult:
    best_epoch: int
    best_val: dict[str, float]
    test: dict[str, float]
    epoch_times: list[float]
    history: list[dict[str, float]] = field(default_factory=list)
    step_mode: str = "eager"
    stopped_early: bool = False
    resumed_at_epoch: int = 0  # the last finished epoch of the checkpoint this fit resumed from (0: fresh)


@dataclass
class FitProgress:
    """Where a fit stands after its last finished epoch: with the model, optimizer and RNG state, all that a
    resumed fit needs to end exactly as an uninterrupted one."""

    epoch: int = 0
    best_auc: float = -math.inf
    best_epoch: int = 0
    best_val: dict[str, float] = field(default_factory=dict)
    stale: int = 0
    stopped: bool = False  # early stopping triggered: only the test evaluation is left
    history: list[dict[str, float]] = field(default_factory=list)
    epoch_times: list[float] = field(default_factory=list)


class Trainer:
    def __init__(self, model: nn.Module, dataset: Dataset, cfg: DictConfig, seed: int, device: torch.device) -> None:
        self.model = model
        self.cfg = cfg
        self.seed = seed
        self.device = device
        # The splits on the device in the stored layout; batches hold only what the model reads (batches.py).
        self.data = device_splits(dataset, model_inputs(model), device)
        self.n_train = len(self.data["train"])
        if self.n_train == 0:
            raise ValueError(f"dataset {dataset.name!r} has no training samples")
        self.batch_size = int(cfg.batch_size)
        self.steps_per_epoch = math.ceil(self.n_train / self.batch_size)
        self.dense_params = regularised_parameters(model, str(cfg.get("l2_scope", "dense")))
        self.l2 = float(cfg.l2)
        self.weight_decay = str(cfg.get("weight_decay", "coupled"))
        if self.weight_decay not in WEIGHT_DECAYS:
            raise ValueError(f"trainer.weight_decay={self.weight_decay!r} is not one of {WEIGHT_DECAYS}")
        self.amp_dtype = {"none": None, "bf16": torch.bfloat16}[str(cfg.amp)]
        # "Did it learn?" (benchmark/diagnostics.py): a fixed probe batch and the loss of a constant prediction
        self.probe = self.data["train"].batch(probe_index(self.n_train, seed, device))
        self.base_entropy = base_rate_entropy(self.data["train"].label)
        self.loss_sum = torch.zeros((), device=device)
        self.steps_run = 0  # optimiser steps taken by this trainer (counted on the host, no sync)
        self._graph: torch.cuda.CUDAGraph | None = None
        self._static_index = torch.zeros(self.batch_size, dtype=torch.long, device=device)
        self._train_forward: Callable[[dict[str, Tensor]], Tensor] = model
        self.graph_reason = ""  # why the step runs eager where a graph was possible in principle
        self._use_graph = False
        use_graph = self._use_graph = self._graph_mode()
        # what the training step runs as: cuda_graph is the plan until the first epoch captures it, and becomes eager
        # should the capture fail (_capture); read it after training (FitResult.step_mode) to know what ran
        self.step_mode = "cuda_graph" if use_graph else "eager"
        if _flag(cfg.get("compile", False)):
            # Training forward only: evaluation runs the plain module, so its other batch shapes never recompile.
            self._train_forward = torch.compile(model)
            self.step_mode += "+compile"
        # L2 (module docstring) as Adam's weight_decay on the dense parameters: the gradient of l2 * ||w||^2 is
        # 2 * l2 * w, which weight_decay adds to the gradient inside the (fused) optimiser kernel, instead of
        # ~4 extra kernels per parameter in the forward and backward passes.
        dense_ids = {id(p) for p in self.dense_params}
        tables = embedding_ids(model)
        l2_embedding = float(cfg.get("l2_embedding", 0.0))
        groups = [{"params": self.dense_params, "weight_decay": 2.0 * self.l2},
                  {"params": [p for p in model.parameters() if p.requires_grad and id(p) not in dense_ids
                              and id(p) not in tables], "weight_decay": 0.0},
                  {"params": [p for p in model.parameters() if p.requires_grad and id(p) in tables],
                   "weight_decay": 2.0 * l2_embedding}]
        # fused=True: one kernel for the whole update on CUDA and on CPU (the for-loop default costs about as
        # much as the forward pass of a small CTR model on a CPU); capturable: its step count stays on the device.
        optimizer = torch.optim.AdamW if self.weight_decay == "decoupled" else torch.optim.Adam
        self.optimizer = optimizer(
            [g for g in groups if g["params"]], lr=float(cfg.lr), betas=(float(cfg.betas[0]), float(cfg.betas[1])),
            capturable=use_graph, fused=True,
        )

    # ---- the training step -------------------------------------------------------------------------------
    def _graph_mode(self) -> bool:
        """Whether to capture the whole step as one CUDA graph: trainer.cuda_graph auto or true, on CUDA only.
        A model that declares itself uncapturable (`graph_capturable = False`, with `graph_unsafe_reason`) or
        whose step synchronises with the host runs eager instead, with the reason logged (`graph_reason`)."""
        requested = str(self.cfg.cuda_graph).lower()
        if requested == "false":
            return False
        if self.device.type != "cuda":
            if requested == "true":
                self._eager_because(f"trainer.cuda_graph=true needs CUDA, the device is {self.device}")
            return False
        if not getattr(self.model, "graph_capturable", True):
            self._eager_because(getattr(self.model, "graph_unsafe_reason", "") or "the model is not graph-capturable")
            return False
        sync = self._host_sync_in_step()
        if sync is not None:
            self._eager_because(f"the training step synchronises with the host: {sync}")
            return False
        return True

    def _eager_because(self, reason: str) -> None:
        self.graph_reason = reason
        print(f"[trainer] CUDA graph off, the training step runs eager: {reason}", file=sys.stderr)

    def _host_sync_in_step(self) -> str | None:
        """One forward and backward pass on the first training rows with CUDA's sync debug mode set to `error`:
        returns the first line of the error when the step synchronises with the host (`.item()`, boolean-mask
        indexing, a host tensor copied in), which a CUDA graph cannot capture; None when it does not. Leaves no
        trace: random state, buffers (BatchNorm statistics) and gradients are restored."""
        index = torch.arange(self.batch_size, device=self.device) % self.n_train
        batch = self.data["train"].batch(index)
        saved_buffers = [b.detach().clone() for b in self.model.buffers()]
        was_training = self.model.training
        previous_mode = torch.cuda.get_sync_debug_mode()
        self.model.train()
        try:
            with torch.random.fork_rng(devices=[self.device]):
                torch.cuda.set_sync_debug_mode("error")
                try:
                    total, _ = self._loss(batch)
                    total.backward()
                finally:
                    torch.cuda.set_sync_debug_mode(previous_mode)
        except RuntimeError as error:
            return (str(error).strip().splitlines() or [type(error).__name__])[0][:300]
        finally:
            with torch.no_grad():
                for buffer, saved in zip(self.model.buffers(), saved_buffers):
                    buffer.copy_(saved)
            for p in self.model.parameters():
                p.grad = None
            self.model.train(was_training)
        return None

    def _loss(self, batch: dict[str, Tensor]) -> tuple[Tensor, Tensor]:
        """(total loss to minimise, data loss to report). The L2 term's gradient comes from Adam's weight_decay
        (see __init__). No autocast weight cache: casts cached during a capture must not outlive it."""
        with torch.autocast(self.device.type, dtype=self.amp_dtype, enabled=self.amp_dtype is not None,
                            cache_enabled=False):
            logits = self._train_forward(batch)
        data_loss = nn.functional.binary_cross_entropy_with_logits(logits.float(), batch["label"])
        total = data_loss
        extra_loss = getattr(self.model, "extra_loss", None)
        if extra_loss is not None:
            extra = extra_loss()
            if extra is not None:
                total = total + extra
        return total, data_loss

    def _step(self, index: Tensor) -> None:
        """One optimiser step on the rows at `index`: gather, forward, backward, Adam, and the data loss added
        to `loss_sum` on the device. No host synchronisation, so the same code runs eager and under capture."""
        total, data_loss = self._loss(self.data["train"].batch(index))
        # Gradients set to None: backward writes fresh ones (no zero-fill kernels); under capture they come from
        # the graph's memory pool, and every replay overwrites them.
        self.optimizer.zero_grad(set_to_none=True)
        total.backward()
        self.optimizer.step()
        self.loss_sum += data_loss.detach()

    def _capture(self, warmup: list[Tensor]) -> None:
        """Warm up on a side stream with real training steps on the epoch's first batches (the lazy set-ups —
        optimiser state, cuBLAS workspaces, compilation — must happen before capture), then capture one whole
        step that reads its rows from `_static_index`. Should the capture fail all the same, the step runs
        eager from here on, with the reason logged."""
        caller = torch.cuda.current_stream(self.device)
        side = torch.cuda.Stream(self.device)
        side.wait_stream(caller)
        with torch.cuda.stream(side), warnings.catch_warnings():
            # Adam warns once that a capturable optimiser runs uncaptured: expected during the warm-up.
            warnings.filterwarnings("ignore", message=".*capturable=True.*")
            for index in warmup:
                self._step(index)
        caller.wait_stream(side)
        self.optimizer.zero_grad(set_to_none=True)
        graph = torch.cuda.CUDAGraph()
        try:
            with torch.cuda.graph(graph):
                self._step(self._static_index)
        except RuntimeError as error:
            torch.cuda.set_stream(caller)  # a failed capture leaves torch.cuda.graph's stream current
            reset_cuda_rng_after_failed_capture(self.device, self.seed * 1_000_003 + self.steps_run)
            self.optimizer.zero_grad(set_to_none=True)
            self._use_graph = False
            self.step_mode = self.step_mode.replace("cuda_graph", "eager")
            first_line = (str(error).strip().splitlines() or [type(error).__name__])[0][:300]
            self._eager_because(f"capture failed: {first_line}")
            return
        self._graph = graph

    def release_graph(self) -> None:
        """Drop the captured step; the next epoch warms up and captures again. Needed after anything replaces
        a tensor the graph reads or writes: `optimizer.load_state_dict` (new state tensors), new Parameters or
        data. `model.load_state_dict` copies in place and keeps the graph valid."""
        self._graph = None

    def train_epoch(self, epoch: int, progress: bool) -> float:
        """Train one epoch of `steps_per_epoch` steps of `batch_size` rows; returns the mean training (data)
        loss, read with the epoch's one host synchronisation. Graphed: the first epoch's first WARMUP_STEPS
        steps run eager (warm-up), then one graph replay per step."""
        self.model.train()
        perm = epoch_permutation(self.n_train, self.batch_size, self.seed, epoch, self.device)
        batches = perm.view(self.steps_per_epoch, self.batch_size)
        self.loss_sum.zero_()
        start = 0
        if self._use_graph and self._graph is None:
            start = min(WARMUP_STEPS, self.steps_per_epoch)
            self._capture([batches[i] for i in range(start)])
        bar = tqdm(total=self.steps_per_epoch, initial=start, desc=f"epoch {epoch}", leave=False,
                   disable=not progress, mininterval=0.5)
        for i in range(start, self.steps_per_epoch):
            if self._graph is not None:
                self._static_index.copy_(batches[i])
                self._graph.replay()
            else:
                self._step(batches[i])
            bar.update(1)
        bar.close()
        self.steps_run += self.steps_per_epoch
        mean_loss = float(self.loss_sum) / self.steps_per_epoch  # the one host sync of the epoch
        if not math.isfinite(mean_loss):
            raise NonFiniteLossError(
                f"training loss is {mean_loss} in epoch {epoch}: the run is stopped "
                "(try a lower trainer.lr, or trainer.amp=none if bf16 autocast is on)"
            )
        return mean_loss

    # ---- evaluation ---------------------------------------------------------------------------------------
    @torch.no_grad()
    def predict(self, split: str) -> np.ndarray:
        """Click probabilities for a whole split, in large batches."""
        self.model.eval()
        data = self.data[split]
        step = int(self.cfg.eval_batch_size)
        chunks = []
        for lo in range(0, len(data), step):
            batch = data.rows(lo, lo + step)
            with torch.autocast(self.device.type, dtype=self.amp_dtype, enabled=self.amp_dtype is not None):
                chunks.append(torch.sigmoid(self.model(batch).float()))
        return torch.cat(chunks).cpu().numpy() if chunks else np.zeros(0, dtype=np.float32)

    def evaluate(self, split: str) -> dict[str, float]:
        data = self.data[split]
        probs = self.predict(split)
        return evaluate(data.label.cpu().numpy(), probs, data.arrays["user_id"].cpu().numpy())

    # ---- the whole fit ------------------------------------------------------------------------------------
    def fit(self, on_epoch_end: EpochCallback | None = None,
            save_checkpoint: Callable[[dict[str, Any]], None] | None = None,
            resume_from: dict[str, Any] | None = None, evaluate_test: bool = True) -> FitResult:
        """Train with early stopping on validation AUC, restore the best weights, evaluate test once (never with
        `evaluate_test=False`: a tuning trial; `test` is then empty).

        `save_checkpoint(state)` is called at the end of every epoch (after `on_epoch_end`) with
        `training_state()`; `resume_from` is such a state: the fit continues after its last epoch and ends
        exactly as the uninterrupted fit would have (same seed, same device and thread count)."""
        progress = {"auto": sys.stderr.isatty(), "true": True, "false": False}[str(self.cfg.progress).lower()]
        fit = FitProgress()
        best_state: dict[str, Tensor] | None = None
        if resume_from is not None:
            fit, best_state = self.restore(resume_from)
        resumed_at = fit.epoch
        patience, max_epochs = int(self.cfg.patience), int(self.cfg.max_epochs)
        for epoch in range(fit.epoch + 1, max_epochs + 1):
            if fit.stopped:
                break
            synchronize(self.device)
            start = time.perf_counter()
            train_loss = self.train_epoch(epoch, progress)
            synchronize(self.device)
            epoch_time = time.perf_counter() - start
            val = self.evaluate("valid")
            record = {"train_loss": train_loss, "val_auc": val["auc"], "val_logloss": val["logloss"],
                      "val_gauc": val["gauc"], "epoch_time_s": epoch_time,
                      "diag_train_loss_ratio": train_loss / self.base_entropy if self.base_entropy else math.nan,
                      **diagnose(self.model, self.probe)}
            fit.epoch = epoch
            fit.epoch_times.append(epoch_time)
            fit.history.append(record)
            told_to_stop = False
            if on_epoch_end is not None:
                try:
                    on_epoch_end(epoch, record)
                except StopTraining:
                    told_to_stop = True
            if val["auc"] > fit.best_auc:
                fit.best_auc, fit.best_epoch, fit.best_val, fit.stale = val["auc"], epoch, dict(val), 0
                best_state = copy.deepcopy(self.model.state_dict())
            else:
                fit.stale += 1
                fit.stopped = fit.stale >= patience
            fit.stopped = fit.stopped or told_to_stop
            if save_checkpoint is not None:
                save_checkpoint(self.training_state(fit, best_state))
        stopped_early = fit.stopped or len(fit.history) < max_epochs
        if best_state is not None:
            self.model.load_state_dict(best_state)
        test = self.evaluate("test") if evaluate_test else {}
        return FitResult(best_epoch=fit.best_epoch, best_val=fit.best_val, test=test, epoch_times=fit.epoch_times,
                         history=fit.history, step_mode=self.step_mode, stopped_early=stopped_early,
                         resumed_at_epoch=resumed_at)

    # ---- checkpoint and resume ----------------------------------------------------------------------------
    def training_state(self, fit: FitProgress, best_state: dict[str, Tensor] | None) -> dict[str, Any]:
        """Everything a resumed fit needs, as plain tensors, numbers, lists and dicts (loadable with
        torch.load(weights_only=True))."""
        state: dict[str, Any] = {
            "model": self.model.state_dict(), "optimizer": self.optimizer.state_dict(),
            "best_state": best_state, "progress": dict(vars(fit)), "torch_rng": torch.get_rng_state(),
        }
        if self.device.type == "cuda":
            state["cuda_rng"] = torch.cuda.get_rng_state(self.device)
        return state

    def restore(self, state: dict[str, Any]) -> tuple[FitProgress, dict[str, Tensor] | None]:
        """Load a `training_state()` into the model, optimizer and RNGs; returns the fit progress and the best
        weights so far. A state that does not fit this model or optimizer raises a ValueError."""
        try:
            self.model.load_state_dict(state["model"])
            self.optimizer.load_state_dict(state["optimizer"])
            fit = FitProgress(**state["progress"])
            best = state.get("best_state")
            best_state = {k: v.to(self.device) for k, v in best.items()} if best is not None else None
            torch.set_rng_state(state["torch_rng"])
            if self.device.type == "cuda" and "cuda_rng" in state:
                torch.cuda.set_rng_state(state["cuda_rng"], self.device)
        except (KeyError, TypeError, ValueError, RuntimeError) as error:
            raise ValueError(
                f"the checkpoint does not fit this model/trainer ({type(error).__name__}: {str(error)[:300]}); "
                "run with trainer.resume=false to start fresh"
            ) from error
        return fit, best_state


def summarise_epoch_times(epoch_times: list[float]) -> dict[str, Any]:
    """The first epoch (warm-up, graph capture) on its own, and the mean of the others (of the first alone when
    only one ran). Named apart from the per-epoch `epoch_time_s` series, whose latest value MLflow would show."""
    steady = epoch_times[1:] or epoch_times
    return {"first_epoch_time_s": epoch_times[0], "epoch_time_mean_s": float(np.mean(steady))}
