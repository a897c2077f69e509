"""Writes torch_noise_seed0.f32: the N(0, 1) draws diffusers' Euler ancestral tests take.

Those tests seed `torch.manual_seed(0)` and draw `torch.randn((4, 3, 8, 8))` once per
step; their published sums and means depend on these draws. The file holds the first 9
draws (the 10th step adds no noise), 9 x 768 float32 values, little-endian, in torch's
row-major order. Run with any Python that has torch (checked with torch 1.13 on CPU):

    python3 test/models/schedulers/make_torch_noise.py
"""
import pathlib

import torch

generator = torch.manual_seed(0)
draws = [torch.randn((4, 3, 8, 8), generator=generator, dtype=torch.float32) for _ in range(9)]
data = torch.stack(draws).numpy().astype("<f4").tobytes()
pathlib.Path(__file__).with_name("torch_noise_seed0.f32").write_bytes(data)
