"""How far re-scoring the shipped checkpoints moves under other float32 kernels: the basis of verify's tolerances.

Re-evaluates a subset of the shipped checkpoints (:func:`gvcore.reproduce.verify.verify`) under each thread count
and ``torch.backends.mkldnn`` setting given, and prints the largest difference per column from the shipped
tables. ``gvcore/reproduce/verify.py`` sets its tolerances at 20x the largest spread seen here and on a second
machine.

    python bench/numeric_spread.py --threads 1 2 --methods espcn-x2-l1-s0 espcn-x2-l1-gv-s0
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import torch

from gvcore.reproduce.verify import verify


def main(argv: list[str] | None = None) -> int:
    """Print the spread table (markdown) and return 0."""
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--assets", default="assets", help="a reproduction's assets folder")
    parser.add_argument("--threads", type=int, nargs="+", default=[1, 2], help="torch thread counts to try")
    parser.add_argument(
        "--methods", nargs="*", default=None, help="checkpoint labels (default: ESPCN x2 seed 0)"
    )
    args = parser.parse_args(argv)
    meta = json.loads((Path(args.assets) / "results" / "reproduce_meta.json").read_text())
    methods = args.methods or [
        m for m in meta["checkpoints"] if m.startswith("espcn-x2-") and m.endswith("-s0")
    ]
    columns: list[str] = []
    rows = []
    for threads in args.threads:
        torch.set_num_threads(threads)
        for mkldnn in (True, False):
            torch.backends.mkldnn.enabled = mkldnn
            report = verify(args.assets, methods=methods)
            columns = columns or list(report.max_abs_diff)
            rows.append((threads, mkldnn, report.max_abs_diff, report.ok))
    print(f"methods: {', '.join(methods)}; cpu threads available: {torch.get_num_threads()}")
    print("| threads | mkldnn | " + " | ".join(columns) + " | verify |")
    print("|---|---|" + "---|" * len(columns) + "---|")
    for threads, mkldnn, diffs, ok in rows:
        cells = " | ".join(f"{diffs[c]:.2g}" for c in columns)
        print(f"| {threads} | {mkldnn} | {cells} | {'ok' if ok else 'FAIL'} |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
