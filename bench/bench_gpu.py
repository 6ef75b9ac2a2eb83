"""GPU benchmark: GV loss forward+backward (torch eager, torch.compile, Triton) as ratios to ``F.l1_loss``.

Usage::

    python bench/bench_gpu.py [--repeats 20] [--shapes 16x3x192x192,64x3x256x256] [--dtypes float32,bfloat16]
    TRITON_INTERPRET=1 python bench/bench_gpu.py --dry-run   # CPU, tiny shapes: checks the script's logic

Every case is ``loss = f(sr, hr); torch.autograd.grad(loss, sr)`` on the same tensors (``sr`` requires grad,
``hr`` does not). Timing: after warm-up, the cases run interleaved, round after round; each round times
``--inner`` calls of one case between two CUDA events, and the reported time is the median over ``--repeats``
rounds. Ratios divide by ``F.l1_loss`` measured in the same run. Peak memory: ``torch.cuda.max_memory_allocated``
during one forward+backward minus the memory allocated before it (inputs excluded), in MiB.

Cases: ``l1`` (``F.l1_loss``), ``eager`` (``gvcore.gradient_variance_loss(..., backend="torch")``),
``compile`` (``torch.compile`` of that call; compile time excluded, failures reported), ``triton``
(the fused kernel of :mod:`gvcore.kernels.triton_gv` that ``backend="triton"`` dispatches to).
"""

from __future__ import annotations

import argparse
import functools
import os
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

import torch
import torch.nn.functional as F

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from gvcore.kernels.triton_gv import gradient_variance_loss_triton  # noqa: E402
from gvcore.loss import gradient_variance_loss  # noqa: E402

Loss = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]
CASES = ("l1", "eager", "compile", "triton")


def build_cases(compile_ok: bool) -> dict[str, Loss]:
    """The loss callables, by name (``compile`` only when ``compile_ok``)."""
    eager = functools.partial(gradient_variance_loss, backend="torch")
    cases: dict[str, Loss] = {
        "l1": F.l1_loss,
        "eager": eager,
        "triton": gradient_variance_loss_triton,  # what backend="triton" calls, minus the option checks
    }
    if compile_ok:
        cases["compile"] = torch.compile(eager)
    return cases


def step(loss_fn: Loss, sr: torch.Tensor, hr: torch.Tensor) -> None:
    """One forward+backward."""
    (grad,) = torch.autograd.grad(loss_fn(sr, hr), sr)
    del grad


def time_rounds(
    cases: dict[str, Loss], sr: torch.Tensor, hr: torch.Tensor, repeats: int, inner: int
) -> dict[str, float]:
    """Median milliseconds per forward+backward of each case, interleaved rounds."""
    cuda = sr.is_cuda
    samples: dict[str, list[float]] = {name: [] for name in cases}
    for _ in range(repeats):
        for name, fn in cases.items():
            if cuda:
                start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
                start.record()
                for _ in range(inner):
                    step(fn, sr, hr)
                end.record()
                end.synchronize()
                samples[name].append(start.elapsed_time(end) / inner)
            else:
                t0 = time.perf_counter()
                for _ in range(inner):
                    step(fn, sr, hr)
                samples[name].append((time.perf_counter() - t0) * 1e3 / inner)
    return {name: statistics.median(v) for name, v in samples.items()}


def capture_graph(fn: Loss, sr: torch.Tensor, hr: torch.Tensor) -> torch.cuda.CUDAGraph:
    """One forward+backward captured as a CUDA graph (warmed up on a side stream, as capture requires)."""
    side = torch.cuda.Stream()
    side.wait_stream(torch.cuda.current_stream())
    with torch.cuda.stream(side):
        for _ in range(2):
            step(fn, sr, hr)
    torch.cuda.current_stream().wait_stream(side)
    graph = torch.cuda.CUDAGraph()
    with torch.cuda.graph(graph):
        step(fn, sr, hr)
    return graph


def time_graph_rounds(graphs: dict[str, torch.cuda.CUDAGraph], repeats: int, inner: int) -> dict[str, float]:
    """Median GPU milliseconds per replay of each captured step (no Python/launch overhead), interleaved."""
    samples: dict[str, list[float]] = {name: [] for name in graphs}
    for _ in range(repeats):
        for name, graph in graphs.items():
            start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
            start.record()
            for _ in range(inner):
                graph.replay()
            end.record()
            end.synchronize()
            samples[name].append(start.elapsed_time(end) / inner)
    return {name: statistics.median(v) for name, v in samples.items()}


def profiled_kernel_ms(fn: Loss, sr: torch.Tensor, hr: torch.Tensor, steps: int) -> float:
    """GPU milliseconds per step as the sum of its kernels' times (torch.profiler), for steps a graph can't hold."""
    from torch.profiler import ProfilerActivity, profile

    with profile(activities=[ProfilerActivity.CUDA]) as prof:
        for _ in range(steps):
            step(fn, sr, hr)
        torch.cuda.synchronize()
    total_us = sum(evt.self_device_time_total for evt in prof.key_averages())
    return total_us / 1e3 / steps


def peak_mib(fn: Loss, sr: torch.Tensor, hr: torch.Tensor) -> float:
    """Extra peak CUDA memory (MiB) of one forward+backward; NaN on CPU."""
    if not sr.is_cuda:
        return float("nan")
    torch.cuda.synchronize()
    torch.cuda.reset_peak_memory_stats()
    before = torch.cuda.memory_allocated()
    step(fn, sr, hr)
    torch.cuda.synchronize()
    return (torch.cuda.max_memory_allocated() - before) / 2**20


Results = dict[str, tuple[float, float] | str]


def run_config(
    cases: dict[str, Loss],
    shape: tuple[int, ...],
    dtype: torch.dtype,
    device: torch.device,
    args: argparse.Namespace,
) -> tuple[Results, Results]:
    """``({case: (ms, peak MiB) or error text}`` launched from Python, the same from CUDA-graph replays)``."""
    g = torch.Generator(device=device).manual_seed(0)
    hr = torch.rand(shape, generator=g, device=device).to(dtype)
    sr = (hr + 0.05 * torch.randn(shape, generator=g, device=device).to(dtype)).requires_grad_()
    usable: dict[str, Loss] = {}
    results: dict[str, tuple[float, float] | str] = {}
    for name, fn in cases.items():
        try:
            for _ in range(args.warmup):
                step(fn, sr, hr)
            if sr.is_cuda:
                torch.cuda.synchronize()
            usable[name] = fn
        except Exception as exc:  # report, keep benchmarking the others
            results[name] = f"failed: {type(exc).__name__}: {str(exc).splitlines()[0][:80]}"
    times = time_rounds(usable, sr, hr, args.repeats, args.inner)
    graph_results: Results = dict(results)
    for name, fn in usable.items():
        results[name] = (times[name], peak_mib(fn, sr, hr))
    graphs: dict[str, torch.cuda.CUDAGraph] = {}
    if sr.is_cuda and not args.no_graph:
        for name, fn in usable.items():
            try:
                graphs[name] = capture_graph(fn, sr, hr)
            except Exception:  # e.g. a host sync inside the step: sum its kernel times instead
                torch.cuda.synchronize()
                value = results[name]
                mem = value[1] if isinstance(value, tuple) else float("nan")
                graph_results[name] = (profiled_kernel_ms(fn, sr, hr, args.inner), mem)
                graph_results[name + "*"] = "profiled"
        graph_times = time_graph_rounds(graphs, args.repeats, args.inner * 4)
        for name, ms in graph_times.items():
            value = results[name]
            graph_results[name] = (ms, value[1] if isinstance(value, tuple) else float("nan"))
    return results, graph_results


def format_table(rows: list[tuple[str, str, Results]], device_name: str, title: str = "") -> str:
    """One Markdown table: per shape and dtype, ms and ratio to L1 and peak MiB for each case."""
    head = f"{title}Device: {device_name}; torch {torch.__version__}\n\n"
    head += "| shape | dtype | L1 ms | eager ms (x L1) | compile ms (x L1) | triton ms (x L1) | triton vs eager | peak MiB L1 / eager / compile / triton |\n"
    head += "|---|---|---|---|---|---|---|---|\n"
    lines = []
    for shape, dtype, res in rows:
        l1 = res.get("l1")
        base = l1[0] if isinstance(l1, tuple) else float("nan")

        def cell(name: str, base: float = base, res: dict[str, tuple[float, float] | str] = res) -> str:
            value = res.get(name, "n/a")
            if isinstance(value, str):
                return value
            mark = "*" if name + "*" in res else ""
            return f"{value[0]:.3f}{mark} ({value[0] / base:.2f}x)"

        def mem(name: str, res: dict[str, tuple[float, float] | str] = res) -> str:
            value = res.get(name)
            return f"{value[1]:.0f}" if isinstance(value, tuple) else "-"

        eager, triton = res.get("eager"), res.get("triton")
        speedup = (
            f"{eager[0] / triton[0]:.1f}x faster"
            if isinstance(eager, tuple) and isinstance(triton, tuple)
            else "-"
        )
        lines.append(
            f"| {shape} | {dtype} | {base:.3f} | {cell('eager')} | {cell('compile')} | {cell('triton')} | {speedup} | "
            + " / ".join(mem(n) for n in CASES)
            + " |"
        )
    return head + "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    """Run the benchmark and print its Markdown tables (stdout) with per-configuration progress (stderr).

    Args:
        argv: command-line arguments (default ``sys.argv[1:]``).

    Returns:
        The exit status: 0, or 2 without a CUDA device (unless ``--dry-run``).
    """
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--shapes", default="16x3x192x192,64x3x256x256")
    parser.add_argument("--dtypes", default="float32,bfloat16")
    parser.add_argument("--repeats", type=int, default=20)
    parser.add_argument("--inner", type=int, default=5)
    parser.add_argument("--warmup", type=int, default=3)
    parser.add_argument("--no-compile", action="store_true", help="skip the torch.compile case")
    parser.add_argument("--no-graph", action="store_true", help="skip the CUDA-graph (GPU time only) table")
    parser.add_argument("--dry-run", action="store_true", help="CPU, tiny shapes, Triton interpreter")
    args = parser.parse_args(argv)

    if args.dry_run:
        os.environ["TRITON_INTERPRET"] = "1"
        device = torch.device("cpu")
        args.shapes, args.repeats, args.inner, args.warmup = "2x3x19x21", 2, 1, 1
        args.no_compile = True
        device_name = "CPU (dry run, Triton interpreter)"
    else:
        if not torch.cuda.is_available():
            print("bench_gpu.py: no CUDA device (use --dry-run to check the script on CPU)", file=sys.stderr)
            return 2
        device = torch.device("cuda")
        device_name = torch.cuda.get_device_name(device)

    cases = build_cases(compile_ok=not args.no_compile)
    rows, graph_rows = [], []
    for shape_text in args.shapes.split(","):
        shape = tuple(int(s) for s in shape_text.split("x"))
        for dtype_name in args.dtypes.split(","):
            t0 = time.perf_counter()
            res, graph_res = run_config(cases, shape, getattr(torch, dtype_name), device, args)
            rows.append((shape_text, dtype_name, res))
            graph_rows.append((shape_text, dtype_name, graph_res))
            row = format_table(rows[-1:], device_name).splitlines()[-1]
            print(f"# {time.perf_counter() - t0:.1f} s: {row}", file=sys.stderr, flush=True)
    if device.type == "cuda" and not args.no_graph:
        title = (
            "GPU time: each forward+backward captured once as a CUDA graph and replayed (no launch overhead);\n"
            "* = not capturable, sum of its kernel times from torch.profiler instead.\n"
        )
        print(format_table(graph_rows, device_name, title) + "\n")
    title = "Launched from Python (includes host overhead: autograd, argument checks, kernel launches).\n"
    print(format_table(rows, device_name, title))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
