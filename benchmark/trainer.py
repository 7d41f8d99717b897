"""The one training loop every model goes through (same optimiser, regularisation, batching, early stopping,
metrics and timing), so that the comparison between models is fair.

Batching: the whole dataset lives on the device; each epoch draws a permutation from a generator seeded by
(seed, epoch) and gathers batches by index there. Every step has exactly `batch_size` examples: the last,
partial batch is filled up with examples from the start of the same permutation (so every example is seen at
least once per epoch and the step shape is static, which CUDA-graph capture needs).

Loss = mean BCE-with-logits + l2 * Σ‖w‖² over every parameter that is not an nn.Embedding weight (embedding
tables are left out: a dense L2 gradient on all rows would shrink the rows of items absent from the batch at
every step) + the model's `extra_loss()` where it has one (DIEN's auxiliary loss).
"""
from __future__ import annotations

import copy
import math
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
from omegaconf import DictConfig
from torch import Tensor, nn
from tqdm import tqdm

from benchmark.data.schema import Dataset
from benchmark.metrics import evaluate

EpochCallback = Callable[[int, dict[str, float]], None]


class NonFiniteLossError(RuntimeError):
    """The training loss became NaN or infinite: the job stops rather than train on garbage."""


def select_device(requested: str) -> torch.device:
    """`auto` picks CUDA when present, else CPU; an explicit device that is not there is an error."""
    if requested == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    device = torch.device(requested)
    if device.type == "cuda" and not torch.cuda.is_available():
        raise ValueError(f"trainer.device={requested!r} but CUDA is not available here; use trainer.device=auto or cpu")
    return device


def device_name(device: torch.device) -> str:
    if device.type == "cuda":
        return torch.cuda.get_device_name(device)
    import platform

    return f"CPU ({platform.processor() or platform.machine()}, {torch.get_num_threads()} threads)"


def synchronize(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def to_device(split: dict[str, np.ndarray], device: torch.device) -> dict[str, Tensor]:
    return {k: torch.as_tensor(v, device=device) for k, v in split.items()}


def gather(data: dict[str, Tensor], index: Tensor) -> dict[str, Tensor]:
    return {k: v.index_select(0, index) for k, v in data.items()}


def dense_parameters(model: nn.Module) -> list[Tensor]:
    """Parameters that get the L2 penalty: all but embedding tables."""
    embedding_ids = {id(m.weight) for m in model.modules() if isinstance(m, nn.Embedding)}
    return [p for p in model.parameters() if p.requires_grad and id(p) not in embedding_ids]


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
        self.data = {name: to_device(split, device) for name, split in dataset.splits.items()}
        self.n_train = len(dataset.splits["train"]["label"])
        if self.n_train == 0:
            raise ValueError(f"dataset {dataset.name!r} has no training samples")
        self.batch_size = int(cfg.batch_size)
        self.steps_per_epoch = math.ceil(self.n_train / self.batch_size)
        self.dense_params = dense_parameters(model)
        self.l2 = float(cfg.l2)
        self.amp_dtype = {"none": None, "bf16": torch.bfloat16}[str(cfg.amp)]
        use_graph = self._graph_mode()
        self.step_mode = "cuda_graph" if use_graph else "eager"
        self.optimizer = torch.optim.Adam(
            model.parameters(), lr=float(cfg.lr), betas=(float(cfg.betas[0]), float(cfg.betas[1])),
            capturable=use_graph, fused=(device.type == "cuda") or None,
        )
        self.loss_sum = torch.zeros((), device=device)
        self._graph: torch.cuda.CUDAGraph | None = None
        self._static_index = torch.zeros(self.batch_size, dtype=torch.long, device=device)

    # ---- the training step -------------------------------------------------------------------------------
    def _graph_mode(self) -> bool:
        """Whether to capture the whole step as one CUDA graph; logs why not when it was asked for."""
        requested = str(self.cfg.cuda_graph)
        if requested == "false" or self.device.type != "cuda":
            return False
        if not getattr(self.model, "graph_capturable", True):
            reason = getattr(self.model, "graph_unsafe_reason", "the model is not graph-capturable")
            print(f"[trainer] CUDA graph disabled: {reason}; running eager", file=sys.stderr)
            return False
        return True

    def _loss(self, batch: dict[str, Tensor]) -> tuple[Tensor, Tensor]:
        """(total loss to minimise, data loss to report)."""
        with torch.autocast(self.device.type, dtype=self.amp_dtype, enabled=self.amp_dtype is not None):
            logits = self.model(batch)
        data_loss = nn.functional.binary_cross_entropy_with_logits(logits.float(), batch["label"])
        total = data_loss
        if self.l2 > 0 and self.dense_params:
            total = total + self.l2 * torch.stack([p.pow(2).sum() for p in self.dense_params]).sum()
        extra_loss = getattr(self.model, "extra_loss", None)
        if extra_loss is not None:
            extra = extra_loss()
            if extra is not None:
                total = total + extra
        return total, data_loss

    def _step(self, index: Tensor) -> None:
        """One optimiser step on the examples at `index`; no host synchronisation inside."""
        total, data_loss = self._loss(gather(self.data["train"], index))
        self.optimizer.zero_grad(set_to_none=self._graph is None)
        total.backward()
        self.optimizer.step()
        self.loss_sum += data_loss.detach()

    def _capture(self, first_indices: list[Tensor]) -> None:
        """Run the first steps eagerly on a side stream (warm-up, as CUDA graphs require), then capture one
        step. The warm-up steps are real training steps on the epoch's first batches."""
        stream = torch.cuda.Stream(self.device)
        stream.wait_stream(torch.cuda.current_stream(self.device))
        with torch.cuda.stream(stream):
            for index in first_indices:
                self._step(index)
        torch.cuda.current_stream(self.device).wait_stream(stream)
        self.optimizer.zero_grad(set_to_none=True)
        graph = torch.cuda.CUDAGraph()
        with torch.cuda.graph(graph):
            total, data_loss = self._loss(gather(self.data["train"], self._static_index))
            total.backward()
            self.optimizer.step()
            self.loss_sum += data_loss.detach()
        self._graph = graph

    def train_epoch(self, epoch: int, progress: bool) -> float:
        """Train one epoch; returns the mean training (data) loss."""
        self.model.train()
        perm = epoch_permutation(self.n_train, self.batch_size, self.seed, epoch, self.device)
        batches = perm.view(self.steps_per_epoch, self.batch_size)
        self.loss_sum.zero_()
        start = 0
        if self.step_mode == "cuda_graph" and self._graph is None:
            warmup = min(3, self.steps_per_epoch)
            self._capture([batches[i] for i in range(warmup)])
            start = warmup
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
        n = len(data["label"])
        step = int(self.cfg.eval_batch_size)
        chunks = []
        for lo in range(0, n, step):
            batch = {k: v[lo:lo + step] for k, v in data.items()}
            with torch.autocast(self.device.type, dtype=self.amp_dtype, enabled=self.amp_dtype is not None):
                chunks.append(torch.sigmoid(self.model(batch).float()))
        return torch.cat(chunks).cpu().numpy() if chunks else np.zeros(0, dtype=np.float32)

    def evaluate(self, split: str) -> dict[str, float]:
        data = self.data[split]
        probs = self.predict(split)
        return evaluate(data["label"].cpu().numpy(), probs, data["user_id"].cpu().numpy())

    # ---- the whole fit ------------------------------------------------------------------------------------
    def fit(self, on_epoch_end: EpochCallback | None = None,
            save_checkpoint: Callable[[dict[str, Any]], None] | None = None,
            resume_from: dict[str, Any] | None = None) -> FitResult:
        """Train with early stopping on validation AUC, restore the best weights, evaluate test once.

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
                      "val_gauc": val["gauc"], "epoch_time_s": epoch_time}
            fit.epoch = epoch
            fit.epoch_times.append(epoch_time)
            fit.history.append(record)
            if on_epoch_end is not None:
                on_epoch_end(epoch, record)
            if val["auc"] > fit.best_auc:
                fit.best_auc, fit.best_epoch, fit.best_val, fit.stale = val["auc"], epoch, dict(val), 0
                best_state = copy.deepcopy(self.model.state_dict())
            else:
                fit.stale += 1
                fit.stopped = fit.stale >= patience
            if save_checkpoint is not None:
                save_checkpoint(self.training_state(fit, best_state))
        stopped_early = fit.stopped or len(fit.history) < max_epochs
        if best_state is not None:
            self.model.load_state_dict(best_state)
        test = self.evaluate("test")
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
