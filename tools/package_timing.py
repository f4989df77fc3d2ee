"""Time attnbench's written layers against the maintained packages that implement the same mechanism: one layer,
forward and forward+backward, same configuration, on CPU, each side in its own fresh process.

Pairs (attnbench name vs package layer; dim 64, heads 4, dim_head 16, batch 1, float32, benchmark configurations):

* ``nystrom``   ``nystrom`` (64 landmarks, 6 pinv iterations, conv 33) vs ``nystrom_attention.NystromAttention``
* ``performer`` ``performer`` (256 features) vs ``performer_pytorch.SelfAttention`` (``nb_features=256``)
* ``agent``     ``agent`` (49 agents) vs ``agent_attention_pytorch.AgentSelfAttention`` (49 learned agents, no
  talking heads, no gate)
* ``axial``     ``axial`` vs ``axial_attention.AxialAttention(sum_axial_out=False)``

For every pair, grid and process index the script starts one process for ours and one for the package, in turn
(ours, package, ours, package, ...). Each process sets ``torch.set_num_threads``, builds its layer, warms it up and
times ``--repeats`` single calls per mode (``fwd`` under ``inference_mode``; ``fwd_bwd``: forward and backward of a
fixed output gradient, gradients cleared before every call); its result is the median call. Written to ``--out``:
``package_timing.csv`` (pair, mode, grid, side, process, median_ms) and ``package_timing.md``, the ratio
ours / package per pair, mode and grid (median over process pairs, with min–max).

    python tools/package_timing.py --threads 2 --grids 64 128 --out results/package-timing
    python tools/package_timing.py --grids 16 --procs 1 --out /tmp/check   # a quick check that it runs
"""

from __future__ import annotations

import argparse
import csv
import datetime
import importlib.util
import json
import os
import shlex
import statistics
import subprocess
import sys
import time
from pathlib import Path

PAIRS = ("nystrom", "performer", "agent", "axial")
PACKAGES = {"nystrom": "nystrom_attention", "performer": "performer_pytorch", "agent": "agent_attention_pytorch",
            "axial": "axial_attention"}
MODES = ("fwd", "fwd_bwd")
SIDES = ("ours", "package")
DIM, HEADS, DIM_HEAD, BATCH = 64, 4, 16, 1
LIMIT = 1.3  # the bound on ours / package

# What differs between the two layers of a pair, beyond the shared configuration (written into the markdown).
NOTES = {
    "nystrom": "both: 64 landmarks, 6 pinv iterations, residual conv 33 on V, no qkv bias; the package pads N to a "
               "multiple of the landmarks (no padding at 64², 128²).",
    "performer": "both: 256 features, qkv and output bias; the package adds eps to every feature, ours to the "
                 "normaliser only.",
    "agent": "ours pools its 49 agents from the queries and adds the paper's depthwise 3×3 conv on V and an output "
             "bias; the package uses 49 learned agents, no conv, no output bias (talking heads and gate off). "
             "Ours does strictly more work.",
    "axial": "rows then columns; the package's first axis has its own output projection (one more Linear per "
             "token) and no qkv bias; ours has qkv biases.",
}


# ------------------------------------------------------------------------------------------------------- child
def build(pair: str, side: str, grid: int):
    """The layer and its input (``[1, G, G, 64]`` for ours and axial_attention, ``[1, G², 64]`` for the others)."""
    import torch

    from attnbench import create_attention

    x_grid = torch.randn(BATCH, grid, grid, DIM)
    x_seq = x_grid.reshape(BATCH, grid * grid, DIM)
    if side == "ours":
        kwargs = {"nystrom": dict(landmarks=64, pinv_iterations=6, conv_kernel=33, qkv_bias=False),
                  "performer": dict(features=256),
                  "agent": dict(agents=49, qkv_bias=False),
                  "axial": {}}[pair]
        return create_attention(pair, DIM, HEADS, **kwargs), x_grid
    if pair == "nystrom":
        from nystrom_attention import NystromAttention
        return NystromAttention(dim=DIM, dim_head=DIM_HEAD, heads=HEADS, num_landmarks=64, pinv_iterations=6,
                                residual=True, residual_conv_kernel=33), x_seq
    if pair == "performer":
        from performer_pytorch import SelfAttention
        return SelfAttention(dim=DIM, heads=HEADS, dim_head=DIM_HEAD, nb_features=256, qkv_bias=True,
                             attn_out_bias=True), x_seq
    if pair == "agent":
        from agent_attention_pytorch import AgentSelfAttention
        return AgentSelfAttention(DIM, num_agent_tokens=49, dim_head=DIM_HEAD, heads=HEADS, talking_heads=False,
                                  gate=False), x_seq
    if pair == "axial":
        from axial_attention import AxialAttention
        return AxialAttention(DIM, num_dimensions=2, heads=HEADS, dim_index=-1, sum_axial_out=False), x_grid
    raise ValueError(f"unknown pair {pair!r}")


def _median_ms(step, warmup: int, repeats: int) -> float:
    for _ in range(warmup):
        step()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        step()
        times.append(time.perf_counter() - start)
    return statistics.median(times) * 1e3


def child(pair: str, side: str, grid: int, threads: int, repeats: int, warmup: int) -> dict:
    """Median milliseconds of one call per mode, in this process."""
    import torch

    torch.set_num_threads(threads)
    torch.manual_seed(0)
    module, x = build(pair, side, grid)
    with torch.no_grad():
        grad_out = torch.randn_like(module(x))

    def forward() -> None:
        with torch.inference_mode():
            module(x)

    def forward_backward() -> None:
        module.zero_grad(set_to_none=True)  # never accumulate gradients across calls
        x.grad = None
        module(x).backward(grad_out)

    result: dict = {"torch": torch.__version__, "threads": torch.get_num_threads()}
    module.eval()
    result["fwd"] = _median_ms(forward, warmup, repeats)
    module.train()  # every dropout is 0: train mode changes nothing the layers compute
    x.requires_grad_(True)
    result["fwd_bwd"] = _median_ms(forward_backward, warmup, repeats)
    return result


# ------------------------------------------------------------------------------------------------------ parent
def _cpu_model() -> str:
    from attnbench.measure.provenance import cpu_model

    return cpu_model()


def _load() -> float:
    from attnbench.measure.provenance import load_average

    load = load_average()
    return float("nan") if load is None else load


def run_child(args: argparse.Namespace, pair: str, side: str, grid: int) -> dict:
    command = [sys.executable, str(Path(__file__).resolve()), "--child", "--pair", pair, "--side", side,
               "--grid", str(grid), "--threads", str(args.threads), "--repeats", str(args.repeats),
               "--warmup", str(args.warmup)]
    env = {**os.environ, "OMP_NUM_THREADS": str(args.threads), "MKL_NUM_THREADS": str(args.threads)}
    done = subprocess.run(command, capture_output=True, text=True, timeout=args.timeout, env=env)
    if done.returncode != 0:
        raise RuntimeError(f"{shlex.join(command)} exited {done.returncode}:\n{done.stderr[-3000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def ratio_table(rows: list[dict], pairs: list[str], grids: list[int]) -> list[str]:
    lines = ["| pair | mode | grid | ours ms (median) | package ms (median) | ours / package: median (min–max) "
             f"| ≤ {LIMIT}× |", "|---|---|---|---:|---:|---|---|"]
    for pair in pairs:
        for mode in MODES:
            for grid in grids:
                times = {side: {r["process"]: r["median_ms"] for r in rows
                                if (r["pair"], r["mode"], r["grid"], r["side"]) == (pair, mode, grid, side)}
                         for side in SIDES}
                both = sorted(set(times["ours"]) & set(times["package"]))
                if not both:
                    continue
                ratios = [times["ours"][i] / times["package"][i] for i in both]
                ratio = statistics.median(ratios)
                lines.append(f"| {pair} | {mode} | {grid}² | {statistics.median(times['ours'].values()):.2f} "
                             f"| {statistics.median(times['package'].values()):.2f} | {ratio:.2f} "
                             f"({min(ratios):.2f}–{max(ratios):.2f}) | {'yes' if ratio <= LIMIT else '**no**'} |")
    return lines


def write(out: Path, rows: list[dict], args: argparse.Namespace, meta: dict, failures: list[str]) -> None:
    out.mkdir(parents=True, exist_ok=True)
    with open(out / "package_timing.csv", "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=["pair", "mode", "grid", "side", "process", "median_ms"])
        writer.writeheader()
        for row in rows:
            writer.writerow({**row, "median_ms": f"{row['median_ms']:.4f}"})
    lines = [
        "# attnbench layers vs maintained packages: time per call",
        "",
        f"Written by `python tools/package_timing.py {shlex.join(args.argv)}` on {meta['date']}.",
        "",
        f"- CPU: {meta['cpu']} ({os.cpu_count()} logical cores); torch {meta.get('torch', '?')}; "
        f"threads {args.threads} (torch.set_num_threads in every process)",
        f"- 1-minute load average: {meta['load_start']:.2f} at the start, {_load():.2f} at the last write (other work "
        "on the machine inflates multi-threaded times: a thread waiting for a busy core stalls the rest)",
        f"- one layer: dim {DIM}, heads {HEADS}, dim_head {DIM_HEAD}, batch {BATCH}, float32, CPU; `fwd` under "
        "`inference_mode`, `fwd_bwd` = forward + backward of a fixed output gradient",
        f"- per process: {args.warmup} warm-up calls, then the median of {args.repeats} timed calls per mode; "
        f"{args.procs} fresh processes per side, interleaved (ours, package, ours, package, ...)",
        "- ratio: ours / package for each process pair (process i of ours against process i of the package), the "
        f"median over pairs with min–max; the issue asks for ≤ {LIMIT}×",
        "- packages: " + ", ".join(f"{PACKAGES[p]} {meta['versions'].get(p, '?')}" for p in args.pairs),
        "",
        *ratio_table(rows, args.pairs, args.grids),
        "",
        "Configuration differences within a pair:",
        "",
        *(f"- {pair}: {NOTES[pair]}" for pair in args.pairs),
    ]
    if failures:
        lines += ["", "Failed or skipped:", "", *(f"- {failure}" for failure in failures)]
    (out / "package_timing.md").write_text("\n".join(lines) + "\n")


def package_version(pair: str) -> str | None:
    from importlib import metadata

    if importlib.util.find_spec(PACKAGES[pair]) is None:
        return None
    try:
        return metadata.version(PACKAGES[pair].replace("_", "-"))
    except metadata.PackageNotFoundError:
        return "?"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--threads", type=int, default=2, help="torch threads in every process (default 2)")
    parser.add_argument("--grids", type=int, nargs="+", default=[64, 128], help="grid sides (default 64 128)")
    parser.add_argument("--out", type=Path, default=Path("package-timing"), help="folder for the CSV and markdown")
    parser.add_argument("--pairs", nargs="+", choices=PAIRS, default=list(PAIRS))
    parser.add_argument("--procs", type=int, default=3, help="fresh processes per side (default 3)")
    parser.add_argument("--repeats", type=int, default=7, help="timed calls per mode and process (default 7)")
    parser.add_argument("--warmup", type=int, default=3, help="untimed calls per mode before timing (default 3)")
    parser.add_argument("--timeout", type=float, default=900, help="seconds allowed to one process (default 900)")
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--pair", choices=PAIRS, help=argparse.SUPPRESS)
    parser.add_argument("--side", choices=SIDES, help=argparse.SUPPRESS)
    parser.add_argument("--grid", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    args.argv = list(sys.argv[1:] if argv is None else argv)

    if args.child:
        print(json.dumps(child(args.pair, args.side, args.grid, args.threads, args.repeats, args.warmup)))
        return 0
    if args.procs < 1 or args.repeats < 1 or args.threads < 1:
        parser.error("--procs, --repeats and --threads must be >= 1")

    meta: dict = {"date": datetime.datetime.now().astimezone().isoformat(timespec="seconds"), "cpu": _cpu_model(),
                  "versions": {}, "load_start": _load()}
    rows: list[dict] = []
    failures: list[str] = []
    pairs = []
    for pair in args.pairs:
        version = package_version(pair)
        if version is None:
            failures.append(f"{pair}: {PACKAGES[pair]} is not installed (pip install the test extra)")
        else:
            meta["versions"][pair] = version
            pairs.append(pair)
    for pair in pairs:
        for grid in args.grids:
            for process in range(args.procs):
                for side in SIDES:  # interleaved: ours, package, ours, package, ...
                    label = f"{pair} {side} {grid}² process {process}"
                    try:
                        result = run_child(args, pair, side, grid)
                    except (RuntimeError, subprocess.TimeoutExpired, ValueError) as error:
                        failures.append(f"{label}: {str(error).splitlines()[0]}")
                        print(f"{label}: FAILED\n{error}", file=sys.stderr, flush=True)
                        continue
                    meta["torch"] = result["torch"]
                    for mode in MODES:
                        rows.append({"pair": pair, "mode": mode, "grid": grid, "side": side, "process": process,
                                     "median_ms": result[mode]})
                    print(f"{label}: " + ", ".join(f"{mode} {result[mode]:.2f} ms" for mode in MODES), flush=True)
                    write(args.out, rows, args, meta, failures)  # after every process: a crash keeps what ran
    write(args.out, rows, args, meta, failures)
    print((args.out / "package_timing.md").read_text())
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
