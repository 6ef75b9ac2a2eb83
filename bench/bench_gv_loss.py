"""Benchmark: GV loss forward+backward vs ``F.l1_loss`` and vs the official formula (CPU, fp32).

Usage::

    .venv/bin/python bench/bench_gv_loss.py [--batch 16] [--size 192] [--repeats 30] [--threads N]

Timing: the three cases run interleaved, round after round, in one process (so load from other processes hits
all of them alike); each number is the median over ``--repeats`` rounds of one ``loss = f(sr, hr);
loss.backward()`` after warm-up. ``sr`` requires grad, ``hr`` does not. Two clocks are reported: wall time
(``perf_counter``) and process CPU time (``process_time``, all threads summed); on a shared machine the CPU time
is the steadier of the two (a descheduled thread does not count), and with ``--threads 1`` it equals the wall
time of an idle machine.

Peak memory: each case runs again in a fresh subprocess (same thread count). After a warm-up on a tiny input,
the kernel's peak-RSS counter is reset (``/proc/self/clear_refs``), three forward+backward passes run, and the
reported number is ``VmHWM - VmRSS(at reset)``: the extra resident memory the loss needs on top of its inputs
(torch has no CPU allocator statistics; this is the CPU counterpart of ``torch.cuda.max_memory_allocated`` and
also counts the C allocator's page faults, as a training process would see them). Falls back to ``ru_maxrss``
differences where ``/proc`` is unavailable.
"""

from __future__ import annotations

import argparse
import json
import resource
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import torch
import torch.nn.functional as F

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from official_gv import OfficialGradientVariance  # noqa: E402

from gvcore.loss import gradient_variance_loss  # noqa: E402

CASES = ("l1", "official", "gv")


def make_case(name: str) -> Callable[[torch.Tensor, torch.Tensor], torch.Tensor]:
    """The loss function of one benchmark case: ``l1``, ``official`` (the paper's code) or ``gv`` (gvcore)."""
    if name == "l1":
        return F.l1_loss
    if name == "official":
        return OfficialGradientVariance(8)
    if name == "gv":
        return gradient_variance_loss
    raise ValueError(f"unknown case {name!r}")


def make_inputs(batch: int, size: int) -> tuple[torch.Tensor, torch.Tensor]:
    """A seeded ``(sr, hr)`` pair of ``(batch, 3, size, size)`` float32 images; ``sr`` requires grad."""
    gen = torch.Generator().manual_seed(0)
    hr = torch.rand(batch, 3, size, size, generator=gen)
    sr = (hr + 0.05 * torch.randn(hr.shape, generator=gen)).requires_grad_()
    return sr, hr


def step(
    fn: Callable[[torch.Tensor, torch.Tensor], torch.Tensor], sr: torch.Tensor, hr: torch.Tensor
) -> None:
    """One timed unit: forward and backward of ``fn(sr, hr)``, with ``sr``'s gradient reset first."""
    sr.grad = None
    fn(sr, hr).backward()


def _status_kib(key: str) -> int | None:
    try:
        text = Path("/proc/self/status").read_text()
    except OSError:
        return None
    for line in text.splitlines():
        if line.startswith(key + ":"):
            return int(line.split()[1])
    return None


def peak_memory_child(name: str, batch: int, size: int, threads: int) -> None:
    """Run in a fresh interpreter: print the extra peak RSS (MiB) of 3 fwd+bwd passes of one case."""
    torch.set_num_threads(threads)
    sr, hr = make_inputs(batch, size)
    fn = make_case(name)
    tiny_sr, tiny_hr = make_inputs(1, 16)
    step(fn, tiny_sr, tiny_hr)  # import-time / first-call costs, outside the measurement
    try:
        Path("/proc/self/clear_refs").write_text("5")  # reset VmHWM to the current RSS
        before = _status_kib("VmRSS")
    except OSError:
        before = None
    if before is None:
        before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    for _ in range(3):
        step(fn, sr, hr)
    after = _status_kib("VmHWM") or resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    print(json.dumps({"case": name, "extra_peak_mib": (after - before) / 1024}))


def peak_memory(name: str, batch: int, size: int, threads: int) -> float:
    """Extra peak resident memory (MiB) of one case, measured in a fresh interpreter (``--child``)."""
    cmd = [sys.executable, __file__, "--child", name, "--batch", str(batch), "--size", str(size)]
    out = subprocess.run([*cmd, "--threads", str(threads)], capture_output=True, text=True, check=True)
    return float(json.loads(out.stdout.strip().splitlines()[-1])["extra_peak_mib"])


def main() -> None:
    """Parse the options, time the cases interleaved, measure their peak memory and print the table."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batch", type=int, default=16)
    parser.add_argument("--size", type=int, default=192)
    parser.add_argument("--repeats", type=int, default=30)
    parser.add_argument("--threads", type=int, default=torch.get_num_threads())
    parser.add_argument("--child", choices=CASES, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        peak_memory_child(args.child, args.batch, args.size, args.threads)
        return
    torch.set_num_threads(args.threads)
    sr, hr = make_inputs(args.batch, args.size)
    fns = {name: make_case(name) for name in CASES}

    gv_value = gradient_variance_loss(sr, hr)
    official_value = fns["official"](sr, hr)
    print(f"GV loss {gv_value.item():.8g}  official formula {official_value.item():.8g}")

    for fn in fns.values():
        for _ in range(3):
            step(fn, sr, hr)
    wall: dict[str, list[float]] = {name: [] for name in CASES}
    cpu: dict[str, list[float]] = {name: [] for name in CASES}
    for _ in range(args.repeats):
        for name, fn in fns.items():
            start_wall, start_cpu = time.perf_counter(), time.process_time()
            step(fn, sr, hr)
            cpu[name].append(time.process_time() - start_cpu)
            wall[name].append(time.perf_counter() - start_wall)
    ms = {name: 1e3 * statistics.median(t) for name, t in wall.items()}
    cpu_ms = {name: 1e3 * statistics.median(t) for name, t in cpu.items()}
    mem = {name: peak_memory(name, args.batch, args.size, args.threads) for name in CASES}

    shape = f"{args.batch}x3x{args.size}x{args.size}"
    print(f"CPU fp32, {shape}, forward+backward, {args.threads} threads, median of {args.repeats}")
    print(f"{'case':<20}{'wall ms':>9}{'x l1':>7}{'cpu ms':>9}{'x l1':>7}{'extra peak RSS MiB':>21}")
    labels = {"l1": "F.l1_loss", "official": "official formula", "gv": "gvcore GV loss"}
    for name in CASES:
        print(
            f"{labels[name]:<20}{ms[name]:>9.2f}{ms[name] / ms['l1']:>7.2f}"
            f"{cpu_ms[name]:>9.2f}{cpu_ms[name] / cpu_ms['l1']:>7.2f}{mem[name]:>21.1f}"
        )
    for clock, t in (("wall", ms), ("cpu", cpu_ms)):
        print(
            f"[{clock}] GV / l1 = {t['gv'] / t['l1']:.2f}x (target <= 4)   "
            f"official / GV = {t['official'] / t['gv']:.1f}x (target >= 10)"
        )
    print(f"GV extra peak {mem['gv']:.1f} MiB vs official {mem['official']:.1f} MiB (target: not higher)")


if __name__ == "__main__":
    main()
