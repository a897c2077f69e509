#!/usr/bin/env python3
"""PyTorch reference for bench/engine.ts: the same contrastive-heads training step.

Two 768->512 linear heads, L2 normalisation, a learnable logit scale (exp, clamped at
100), symmetric InfoNCE, AdamW with the same decay mask and warm-up + cosine schedule,
from the same initial values and on the same batches as the medsyn step.

The benchmark drives it over stdin/stdout, one JSON object per line, so that the two
engines run in alternating rounds on the same machine:

    <- {"ready": true, "torch": "1.13.1", "threads": 2}
    -> {"run": 20}
    <- {"seconds": 0.31, "losses": [...]}
    -> {"quit": true}
"""
import json
import math
import os
import sys
import time

import numpy as np
import torch
import torch.nn.functional as F


def main() -> None:
    folder = sys.argv[1]
    with open(os.path.join(folder, "config.json")) as f:
        config = json.load(f)
    threads = int(config["threads"])
    torch.set_num_threads(threads)
    batch, features, embedding, pairs = config["batch"], config["features"], config["embedding"], config["pairs"]

    def load(name, shape):
        array = np.fromfile(os.path.join(folder, name + ".f32"), dtype="<f4").reshape(shape)
        return torch.from_numpy(array.copy())

    images = load("image", (pairs, features))
    texts = load("text", (pairs, features))
    params = {
        "wi": load("wi", (features, embedding)),
        "bi": load("bi", (embedding,)),
        "wt": load("wt", (features, embedding)),
        "bt": load("bt", (embedding,)),
        "logit_scale": load("logit_scale", ()),
    }
    for tensor in params.values():
        tensor.requires_grad_(True)
    optimizer = torch.optim.AdamW(
        [
            {"params": [params["wi"], params["wt"]], "weight_decay": config["weightDecay"]},
            {"params": [params["bi"], params["bt"], params["logit_scale"]], "weight_decay": 0.0},
        ],
        lr=config["peak"],
        betas=(config["beta1"], config["beta2"]),
        eps=config["epsilon"],
    )
    labels = torch.arange(batch)
    batches = pairs // batch

    def learning_rate(step):
        # The same warm-up + cosine as medsyn's warmupCosine (open_clip's cosine_lr).
        warmup, total, peak = config["warmupSteps"], config["totalSteps"], config["peak"]
        if step < warmup:
            return peak * (step + 1) / warmup
        if step >= total:
            return 0.0
        return 0.5 * (1 + math.cos(math.pi * (step - warmup) / (total - warmup))) * peak

    step = 0

    def train_step():
        nonlocal step
        k = step % batches
        image = images[k * batch:(k + 1) * batch]
        text = texts[k * batch:(k + 1) * batch]
        zi = F.normalize(torch.addmm(params["bi"], image, params["wi"]), dim=-1)
        zt = F.normalize(torch.addmm(params["bt"], text, params["wt"]), dim=-1)
        scale = params["logit_scale"].exp().clamp(max=100)
        logits = scale * zi @ zt.t()
        loss = (F.cross_entropy(logits, labels) + F.cross_entropy(logits.t(), labels)) / 2
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        for group in optimizer.param_groups:
            group["lr"] = learning_rate(step)
        optimizer.step()
        step += 1
        return loss.item()

    print(json.dumps({"ready": True, "torch": torch.__version__, "threads": torch.get_num_threads()}), flush=True)
    for line in sys.stdin:
        message = json.loads(line)
        if message.get("quit"):
            break
        started = time.perf_counter()
        losses = [train_step() for _ in range(int(message["run"]))]
        print(json.dumps({"seconds": time.perf_counter() - started, "losses": losses}), flush=True)


if __name__ == "__main__":
    main()
