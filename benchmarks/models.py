"""Speed of srlib's networks on this device: prints a table.

For each model: training patches per second (one optimiser step on a batch, as its
recipe), inference milliseconds per output megapixel, FLOPs of one training step (forward
and backward, counted by PyTorch's FlopCounterMode), and the fraction of the machine's
convolution throughput that this achieves (the ceiling: the best of a few large
convolutions, forward and backward, measured first). With ``--bf16`` the training steps and
the ceiling run under bf16 autocast in channels_last, as the fast presets train on a CPU
with native bf16 (``cpu_amp``) and every preset on a GPU with native bf16 (Ampere and newer;
a T4 or V100 trains in fp16, ``srlib.device.half_dtype``).

    python benchmarks/models.py [--device cuda] [--steps 5] [--bf16]
"""

from __future__ import annotations

import argparse
import time

import torch
from torch import nn
from torch.utils.flop_counter import FlopCounterMode

from srlib.device import pick_device
from srlib.models import SRCNN, VDSR, Discriminator, SRResNet


def count_flops(fn) -> float:
    """FLOPs that ``fn()`` performs, counted by PyTorch's FlopCounterMode (forward and backward)."""
    with FlopCounterMode(display=False) as counter:
        fn()
    return float(counter.get_total_flops())


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize()


def timed(fn, device, steps: int) -> float:
    fn()  # warm-up
    sync(device)
    t = time.perf_counter()
    for _ in range(steps):
        fn()
    sync(device)
    return (time.perf_counter() - t) / steps


def autocast(device: torch.device, bf16: bool):
    return torch.autocast(device.type, dtype=torch.bfloat16, enabled=bf16)


def conv_ceiling(device: torch.device, bf16: bool = False) -> float:
    """The machine's practical convolution throughput (FLOP/s): the best, over a few large
    convolutions (3x3 64->64, 5x5 64->32, 3x3 128->128), of a forward and backward pass."""
    best = 0.0
    for c_in, c_out, k in [(64, 64, 3), (64, 32, 5), (128, 128, 3)]:
        fmt = torch.channels_last if bf16 else torch.contiguous_format
        conv = nn.Conv2d(c_in, c_out, k, padding=k // 2).to(device, memory_format=fmt)
        x = torch.rand(8, c_in, 96, 96, device=device).contiguous(memory_format=fmt).requires_grad_()

        def fwd_bwd(conv=conv, x=x):
            with autocast(device, bf16):
                y = conv(x)
            y.float().sum().backward()

        s = min(timed(fwd_bwd, device, 2) for _ in range(3))
        best = max(best, count_flops(fwd_bwd) / s)
    return best


def measure(name: str, model: nn.Module, batch: torch.Tensor, image: torch.Tensor | None,
            device: torch.device, steps: int, ceiling: float, bf16: bool = False, out_megapixels: float = 0.25) -> str:
    """One row of the table; ``image`` gives an output of ``out_megapixels`` (inference time is per megapixel)."""
    if isinstance(model, SRCNN):
        model.padding = "valid"
    if bf16:
        model, batch = model.to(memory_format=torch.channels_last), batch.contiguous(memory_format=torch.channels_last)
    opt = torch.optim.SGD(model.parameters(), lr=1e-6)

    def step():
        opt.zero_grad()
        with autocast(device, bf16):
            out = model(batch)
        out.float().pow(2).mean().backward()
        opt.step()

    s_step = timed(step, device, steps)
    flops = count_flops(step)
    ms_mp = float("nan")
    if image is not None:
        if isinstance(model, SRCNN):
            model.padding = "same"
        image = image.to(device)
        with torch.no_grad():
            ms_mp = 1e3 * timed(lambda: model(image), device, max(1, steps // 2)) / out_megapixels
    return (f"{name:<13} {batch.shape[0]:>6} {batch.shape[0] / s_step:>10.0f} {ms_mp:>9.0f} "
            f"{flops / 1e9:>11.2f} {flops / s_step / ceiling:>10.0%}")


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--device")
    p.add_argument("--steps", type=int, default=5)
    p.add_argument("--bf16", action="store_true", help="train under bf16 autocast, channels_last")
    args = p.parse_args()
    device = pick_device(args.device)
    torch.manual_seed(0)
    ceiling = conv_ceiling(device, args.bf16)
    # (name, model, training batch, inference input giving a quarter of an output megapixel)
    cases = [
        ("SRCNN 9-1-5", SRCNN.preset("9-1-5"), torch.rand(128, 1, 33, 33), torch.rand(1, 1, 500, 500)),
        ("SRCNN 9-5-5", SRCNN.preset("9-5-5"), torch.rand(128, 1, 33, 33), torch.rand(1, 1, 500, 500)),
        ("VDSR D=20", VDSR(20), torch.rand(64, 1, 41, 41), torch.rand(1, 1, 500, 500)),
        ("SRResNet x4", SRResNet(4), torch.rand(16, 3, 24, 24), torch.rand(1, 3, 125, 125)),
        ("SRGAN D", Discriminator(96), torch.rand(16, 3, 96, 96), None),
    ]
    precision = "bf16 autocast, channels_last" if args.bf16 else "float32"
    print(f"device: {device}; {precision}; convolution ceiling: {ceiling / 1e9:.1f} GFLOP/s")
    print(f"{'model':<13} {'batch':>6} {'patches/s':>10} {'ms/MP':>9} {'GFLOP/step':>11} {'of ceiling':>11}")
    for name, model, batch, image in cases:
        print(measure(name, model.to(device), batch.to(device), image, device, args.steps, ceiling, args.bf16))


if __name__ == "__main__":
    main()
