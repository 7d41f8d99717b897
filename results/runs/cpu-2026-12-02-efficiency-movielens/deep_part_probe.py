"""Does the deep part of Wide&Deep (or DeepFM) die on MovieLens? Per seed: the share of ReLU units of each DNN
layer that are positive for at least one of 4,096 fixed training rows, and the std of the deep part's logit over
those rows, through the first steps of epoch 1 (seeding in the order of benchmark/run.py, CPU, 1 thread).

    python results/runs/cpu-2026-12-02-efficiency-movielens/deep_part_probe.py wide_deep 0,1,2 300 [overrides]

(from the project root, with ../shared beside it). Output of the committed run: deep_part_probe.log."""
import sys

import torch

from benchmark import PROJECT_ROOT
from benchmark.bench import compose_config
from benchmark.data import load_dataset
from benchmark.run import seed_everything
from benchmark.trainer import Trainer, epoch_permutation, gather
from models import build_model

torch.set_num_threads(1)
model_name = sys.argv[1]
seeds = [int(s) for s in sys.argv[2].split(",")]
steps = int(sys.argv[3])
extra = sys.argv[4:]
cfg = compose_config(f"model={model_name}", "dataset=movielens", f"dataset.raw_dir={PROJECT_ROOT.parent / 'shared' / 'data' / 'ml-1m-part'}", *extra)
dataset = load_dataset(cfg.dataset)
device = torch.device("cpu")
for seed in seeds:
    seed_everything(seed)
    model = build_model(cfg.model, cfg.ablation, dataset.schema, seed, device)
    trainer = Trainer(model, dataset, cfg.trainer, seed, device)
    net = model.net
    # One forward pass of the model itself; hooks keep each ReLU layer's output and the deep part's logit.
    acts = []
    hooks = [layer.register_forward_hook(lambda m, i, o: acts.append(o.detach()))
             for layer in (*net.dnn.activation_layers, net.dnn_linear)]
    probe = gather(trainer.data["train"], torch.arange(4096))

    def measure(step):
        acts.clear()
        model.eval()
        with torch.no_grad():
            model(probe)
        *relu_outputs, deep = acts
        live = [float((a > 0).any(0).float().mean()) for a in relu_outputs]
        model.train()
        return f"step {step:5d} live units per layer {['%.2f' % l for l in live]} deep logit std {float(deep.std()):.2e}"
    print(f"{model_name} seed {seed}:", measure(0))
    perm = epoch_permutation(trainer.n_train, trainer.batch_size, seed, 1, device).view(-1, trainer.batch_size)
    for i in range(steps):
        trainer._step(perm[i])
        if (i + 1) in (1, 2, 5, 10, 25, 50, 100, 200, 400, 800, 1600, 3000) or i + 1 == steps:
            print(f"{model_name} seed {seed}:", measure(i + 1))
    for hook in hooks:
        hook.remove()
