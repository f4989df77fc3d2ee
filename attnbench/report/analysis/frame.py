"""Results as a DataFrame: every file's rows, numeric columns typed from the row schema, series labels."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
import pandas as pd

from attnbench.report.analysis.replicates import collapse
from attnbench.store.csvfile import read_results
from attnbench.store.layout import results_files
from attnbench.store.migrate import upgrade_row
from attnbench.store.schema import COLUMNS, NUMERIC, series_label

__all__ = ["BASELINE", "CONTEXT", "NotResultsError", "baseline_label", "case_wall_total", "load_frame",
           "machine_line", "one_row_per_case", "parse_samples", "prepare"]

# The label ratios and crossovers are measured against: global softmax attention, the quadratic reference.
BASELINE = "full"


class NotResultsError(ValueError):
    """A file that is not an attnbench results file (or holds no rows); ``str()`` is one line for the user."""


# Columns that tell two configurations of one label apart in a series name, in this order.
DISTINGUISHING = ("attention", "kwargs", "batch", "dim", "heads", "dtype", "device", "threads", "tf32",
                  "min_run_time", "min_blocks", "warmup", "timeout")
# What two rows must share to be compared (ratios to the baseline, crossovers): all but the mechanism and grid.
CONTEXT = ("suite", "mode", "batch", "dim", "heads", "dtype", "device", "threads")


def parse_samples(value: object) -> np.ndarray | None:
    """A row's ``time_samples_ms`` (JSON list of per-block times) as an array; ``None`` when absent (schema 1)."""
    if not isinstance(value, str) or not value:
        return None
    return np.asarray(json.loads(value), float)


def load_frame(paths: list[str | Path], replicates: str = "cases") -> pd.DataFrame:
    """Results CSV files (or folders of them, searched recursively) as one DataFrame.

    Every schema column exists (older files get the missing ones empty), numeric columns are converted, and
    ``label`` is the series name: ``[compiled]`` for compiled cases, and — where one label holds several
    configurations (e.g. ``--set batch=4`` rows beside batch 1 rows) — the parameters that differ, so no analysis
    ever mixes two configurations in one series. ``base_label`` keeps the label as written.

    Raises:
        NotResultsError: a file is not an attnbench results file, or no file holds a row.
    """
    files = results_files(paths)
    frames = []
    for f in files:
        try:
            rows = read_results(f)
        except (UnicodeDecodeError, csv.Error) as exc:
            raise NotResultsError(f"{f}: not an attnbench results file ({type(exc).__name__})") from None
        if rows and not {"case_key", "status", "label", "suite"} <= set(rows[0]):
            raise NotResultsError(f"{f}: not an attnbench results file (no case_key/status/label/suite columns)")
        if rows:
            frames.append(pd.DataFrame(rows))
    if not frames:
        raise NotResultsError(f"{', '.join(map(str, paths))}: no attnbench result rows found")
    return prepare(pd.concat(frames, ignore_index=True), replicates)


def prepare(df: pd.DataFrame, replicates: str = "cases") -> pd.DataFrame:
    """Normalise raw result rows (strings, as read): every schema column present, older rows upgraded
    (:func:`~attnbench.store.migrate.upgrade_row`), ``base_label`` and the distinct series ``label``, numeric
    columns converted. The rows of a replicated case become one case row (``replicates="cases"``, what every
    analysis reads: :func:`~attnbench.report.analysis.replicates.collapse`) or stay one row per process
    (``"rows"``)."""
    df = df.copy()
    for col in COLUMNS:
        if col not in df:
            df[col] = ""
    df = df.fillna("")
    df = pd.DataFrame([upgrade_row(r) for r in df.to_dict("records")], index=df.index, columns=df.columns)
    df["base_label"] = [series_label(r) for r in df[["label", "compile"]].to_dict("records")]
    df["label"] = _distinct_labels(df)
    for col in NUMERIC:
        df[col] = pd.to_numeric(df[col], errors="coerce")
    return collapse(df) if replicates == "cases" else df


def _distinct_labels(df: pd.DataFrame) -> list[str]:
    labels = df["base_label"].tolist()
    # Within one suite, task, mode and training budget (the mode is part of a cost configuration; a task has its own
    # settings; one task trained on another budget is another table row, not a variant of the label).
    series = _series_ids(df)
    for (*_, label), g in df.groupby(["suite", "task", "mode", "n_train", "epochs", "base_label"], sort=False,
                                     dropna=False):
        configs = series[g.index].unique()
        if len(configs) < 2:
            continue
        first = g.assign(series=series[g.index]).drop_duplicates("series").set_index("series")
        differing = [c for c in DISTINGUISHING if first[c].astype(str).nunique() > 1]
        for config in configs:
            row = first.loc[config]
            suffix = ", ".join(f"{c}={row[c]}" for c in differing) or f"config {row['config_id']}"
            for i in g.index[series[g.index] == config]:
                labels[df.index.get_loc(i)] = f"{label} ({suffix})"
    return labels


def _series_ids(df: pd.DataFrame) -> pd.Series:
    """The configuration a row's series is: its ``config_id``, except that the rows of a tuned task's
    learning-rate search (``impl`` has an ``lr_grid``) are one series whatever rate each trained at — the report
    reads them at the chosen rate (:mod:`~attnbench.report.analysis.protocol`)."""
    out = df["config_id"].astype(str).copy()
    for i, impl in df["impl"].items():
        facts = json.loads(impl) if isinstance(impl, str) and impl.startswith("{") else {}
        if facts.get("lr_grid"):
            rest = {k: v for k, v in facts.items() if k != "lr"}
            out[i] = "tuned:" + json.dumps([rest, *(str(df.at[i, c]) for c in DISTINGUISHING)], sort_keys=True)
    return out


def one_row_per_case(df: pd.DataFrame) -> pd.DataFrame:
    """The first row of each case of each run: a training case writes one row per evaluation grid (``case_key``
    ending in ``|eval<res>``), and every one of them carries the whole case's ``case_wall_s``."""
    case = df["case_key"].astype(str).str.replace(r"\|eval\d+$", "", regex=True)
    return df.assign(_case=case).drop_duplicates(["run_id", "_case"]).drop(columns="_case")


def case_wall_total(df: pd.DataFrame) -> float:
    """Seconds the cases of ``df`` ran, each case once (see :func:`one_row_per_case`); NaN when no row records it."""
    return float(one_row_per_case(df)["case_wall_s"].sum(min_count=1))


def machine_line(df: pd.DataFrame) -> str:
    """"Machine(s): ..., torch ..., git ..." for a results table: every machine (device, threads) and every torch
    version and git sha the rows draw on, not just the first row's."""
    keys = [k for k in ("device_name", "device", "threads") if k in df.columns]
    seen = df[keys].astype(str).drop_duplicates().to_dict("records") if keys else []
    machines = "; ".join(f"{m.get('device_name', '')} ({m.get('device', '')}, {m.get('threads', '')} threads)"
                         for m in seen)
    torch = ", ".join(sorted(set(df["torch"].astype(str)))) if "torch" in df.columns else ""
    return (f"Machine{'s' if len(seen) > 1 else ''}: {machines}, torch {torch}, "
            f"git {', '.join(sorted(set(df['git_sha'].astype(str))))}")


def baseline_label(df: pd.DataFrame) -> str | None:
    """The label (as written, ``base_label``) measured against: :data:`BASELINE` if present, else the first label
    of that attention."""
    if (df["base_label"] == BASELINE).any():
        return BASELINE
    full = df.loc[df["attention"] == BASELINE, "base_label"]
    return None if full.empty else str(full.iloc[0])
