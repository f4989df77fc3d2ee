"""Blocks of the accuracy runs: the quick suite of the reference run, the full protocol's table (schema-1 legacy rows
first, superseded task by task by the clean runs of every machine, oldest first), the pairwise tests over seeds, and
the learning-rate sweeps."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from attnbench.report.analysis.accuracy import accuracy_summary, pairs_table
from attnbench.report.render.markdown import sweep_markdown, table_markdown
from docs_blocks.sources import Page, Sources

__all__ = ["BLOCKS", "PROTOCOL_TASKS", "protocol_paths", "protocol_rows"]

QUICK, PROTOCOL = "accuracy-quick", "accuracy"  # suites/accuracy-quick.toml, suites/accuracy.toml
QUICK_TASKS = ["darcy16_neuralop", "darcy32"]
# The full-protocol tasks the tables show.
PROTOCOL_TASKS = ["darcy16_neuralop", "darcy16_neuralop_paper_model", "darcy32", "darcy64", "darcy128", "fashion32",
                  "fashion64", "fashion64_ablation", "longrange32", "longrange32_lr3e-4", "longrange32_lr3e-3",
                  "longrange32_standard"]


def protocol_paths(src: Sources) -> list[Path]:
    """The schema-1 legacy rows first, then every machine's clean full-protocol runs, oldest first."""
    return [src.results / "legacy" / "cpu" / "accuracy.csv", *src.references(PROTOCOL)]


def select_rows(src: Sources, paths: list[Path], tasks: list[str]) -> pd.DataFrame:
    """The accuracy rows of ``tasks`` from ``paths``: per (task, label) the configuration of the last file that has
    it, with the same configuration's seeds from every file (a seed measured twice: the later file's row)."""
    df = pd.concat([src.frame(p).assign(_order=order) for order, p in enumerate(paths)], ignore_index=True)
    last = df.groupby(["task", "label"])["_order"].transform("max")
    ids = df[df["_order"] == last].groupby(["task", "label"])["config_id"].agg(set)  # trained and zero-shot ids
    df = df[[c in ids.get((t, lab), ()) for t, lab, c in zip(df["task"], df["label"], df["config_id"])]]
    df = df.sort_values("_order").drop_duplicates(["config_id", "seed", "eval_res"], keep="last")
    return df[(df["kind"] == "accuracy") & df["task"].isin(tasks)]


def protocol_rows(src: Sources) -> pd.DataFrame:
    return select_rows(src, protocol_paths(src), PROTOCOL_TASKS)


def _accuracy(page: Page, df: pd.DataFrame, paths: list[Path]) -> str:
    """The accuracy table (the one specification, :func:`accuracy_summary`) of the rows read from ``paths``."""
    table = accuracy_summary(df).select("task", "budget", "label", "eval_res", "mode", "metric", "value", "ci95",
                                        "rel_mse", "vs_trained", "seeds", "train_s", "peak_mib", "params", "machines")
    sources = ", ".join(page.link(p) for p in paths)
    return (f"From {sources}; per task and mechanism the configuration of the last file that has it, with its seeds "
            f"from every file. {table.note[0].upper()}{table.note[1:]}:\n\n" + table_markdown(table, heading=None))


def accuracy_quick(page: Page) -> str:
    """The quick accuracy suite of the newest reference run."""
    paths = [page.sources.reference(QUICK)]
    return _accuracy(page, select_rows(page.sources, paths, QUICK_TASKS), paths)


def accuracy_protocol(page: Page) -> str:
    """The full protocol's table over every committed accuracy run."""
    return _accuracy(page, page.sources.protocol, protocol_paths(page.sources))


def accuracy_pairs(page: Page) -> str:
    """The differences over seeds that a Welch test supports, and how many pairs were tested."""
    table = pairs_table(page.sources.protocol, differences_only=True)
    view = table.select("task", "budget", "train_res", "eval_res", "metric", "verdict", "means", "seeds", "p")
    return f"{table.note[0].upper()}{table.note[1:]}:\n\n" + table_markdown(view, heading=None)


def lr_sweep(page: Page) -> str:
    """Every learning-rate sweep among the full-protocol rows, with its rule and the answer per mechanism."""
    return sweep_markdown(page.sources.protocol)


BLOCKS = {"accuracy-quick": accuracy_quick, "accuracy-protocol": accuracy_protocol, "accuracy-pairs": accuracy_pairs,
          "lr-sweep": lr_sweep}
