"""Blocks about run-to-run differences: the reference against its re-runs, two re-runs against each other, and the
``linear`` probe per interpreter / torch copy."""

from __future__ import annotations

import json

import numpy as np

from attnbench.report.analysis.compare import ALPHA, NOISE, THRESHOLD, TOO_FEW, compare, machine_drift
from attnbench.report.render.markdown import markdown_table
from attnbench.store.layout import suite_files
from docs_blocks.sources import Page

__all__ = ["BLOCKS"]

SUITE = "cpu"
PROBE = "probe-linear"  # suites/probe-linear.toml


def rerun(page: Page, run: str | None = None) -> str:
    """The reference against a re-run (default: its re-run of the same code from a fresh clone), with
    ``attnbench compare``: per mechanism the range and median of the time ratios and the verdicts."""
    src = page.sources
    a_path = src.reference(SUITE)
    b_path = src.rerun(run, SUITE)
    a, b = src.frame(a_path), src.frame(b_path)
    t = compare(a, b)
    change = t["change"].astype(str)
    rows = [[label, f"{g['ratio'].min():.2f}–{g['ratio'].max():.2f}", f"{g['ratio'].median():.2f}",
             str(int((g["change"] == "slower").sum())), str(int((g["change"] == "faster").sum())),
             str(int((g["change"] == NOISE).sum())), str(int((g["change"] == TOO_FEW).sum())),
             "n/a (no CPU peak for compiled cases)" if g["mem_ratio"].isna().all()
             else f"{g['mem_ratio'].min():.2f}–{g['mem_ratio'].max():.2f}"]
            for label, g in t.dropna(subset=["ratio"]).groupby("label", sort=False)]
    drift = machine_drift(a, b)
    moved = f" {drift['sentence']}." if drift["sentence"] else ""
    return (f"`attnbench compare {src.rel(a_path)} {src.rel(b_path)}` — {len(t)} cases, "
            f"{int((change == 'slower').sum())} significantly slower and {int((change == 'faster').sum())} "
            f"significantly faster in the re-run (exact Mann-Whitney U over the process medians, p < {ALPHA:g}, "
            f"ratio ≥ {THRESHOLD:g} or ≤ 1/{THRESHOLD:g}), {int((change == TOO_FEW).sum())} with too few replicates "
            f"to test, {int(change.str.startswith('status').sum())} status changes; canaries B/A: compute "
            f"{drift['compute']:.3g}, memory {drift['memory']:.3g}.{moved}\n\n"
            + markdown_table(["attention", "time B/A (range over grids and modes)", "median", "slower", "faster",
                              "within noise", "too few replicates", "memory B/A"], rows))


def rerun_pair(page: Page, first: str, second: str) -> str:
    """Two re-runs (run ids under ``results/rerun/``) against each other: how far two runs of the same code and
    environment class move."""
    src = page.sources
    runs = [src.rerun(run, SUITE) for run in (first, second)]
    t = compare(src.frame(runs[0]), src.frame(runs[1]))
    ratios = t["ratio"].dropna()
    sig = t["change"].isin(["slower", "faster"])
    lo, q1, med, q3, hi = np.quantile(ratios, [0, 0.25, 0.5, 0.75, 1])
    return (f"`attnbench compare {src.rel(runs[0])} {src.rel(runs[1])}`: {len(t)} cases, {int(sig.sum())} "
            f"({100 * sig.mean():.0f} %) flagged as significant changes; time ratio B/A over the {len(ratios)} cases "
            f"that ran in both: median {med:.2f}, quartiles {q1:.2f}–{q3:.2f}, range {lo:.2f}–{hi:.2f}.")


def linear_probe(page: Page, *labels: str) -> str:
    """``suites/probe-linear.toml`` run with different interpreter / torch-copy pairs (one folder per pair, each
    holding a results tree); the page names the labels to show."""
    src = page.sources
    folder = src.results / "investigations" / "linear-venv"
    rows, threads = [], set()
    for pair in sorted(p for p in folder.iterdir() if p.is_dir()):
        for path in suite_files(pair, PROBE):
            df = src.frame(path)
            threads |= {int(n) for n in df["threads"]}
            runtime = json.loads(df["runtime"].iloc[0])
            cells = []
            for label in labels:
                for side in (64, 128):
                    hit = df[(df["label"] == label) & (df["height"] == side) & (df["status"] == "ok")]
                    cells.append(f"{hit['time_ms_median'].iloc[0]:.3g}" if len(hit) else "")
            rows.append([pair.name, f"`{runtime['executable']}`", f"`{runtime['torch_path']}`",
                         str(runtime["canary_ms"]["expm1"]), *cells])
    return (f"`python -m attnbench run suites/{PROBE}.toml` per interpreter / torch copy (folders under "
            f"[`{src.rel(folder)}/`]({page.href(folder)}); median ms per forward call, "
            f"{', '.join(map(str, sorted(threads)))} threads):\n\n"
            + markdown_table(["run", "interpreter", "torch imported from", "canary expm1 ms",
                              *(f"{label} {side}²" for label in labels for side in (64, 128))], rows))


BLOCKS = {"rerun": rerun, "rerun-pair": rerun_pair, "linear-probe": linear_probe}
