"""Recount the ``step_flops`` column of committed accuracy runs with the mended counter
(:mod:`attnbench.measure.flops`), so that one column never mixes two counting rules; a run from before the column
(results schema 7, which differs from 8 only by it) gets it filled in and its rows move to schema 8.

Runs before the mend counted attention on CPU as 0 FLOPs and a depthwise convolution's weight gradient ``groups``
times over. A count is a function of the model and the batch's shape, not of the data or the machine, so it can be
redone without training: each row's model is rebuilt from the run's suite file (task, label, seed), checked
against the row's parameter count (a mismatch stops the tool: the suite changed since the run), and one training
step on a batch of the row's shape is counted. Only ``step_flops`` changes; the file is rewritten whole through a
temporary file, and the run's JSON records the commit that recounted it.

    python tools/recount_step_flops.py results/reference/<machine>/<run>/accuracy-protocol.csv [...]
"""

from __future__ import annotations

import argparse
import csv
import dataclasses
import json
import os
import sys
from pathlib import Path

import torch

from attnbench.measure.provenance import code_version
from attnbench.spec.suite import load_suite
from attnbench.store.csvfile import is_locked
from attnbench.store.schema import COLUMNS, SCHEMA_VERSION
from attnbench.training.tasks import Normaliser, TaskData

ROOT = Path(__file__).resolve().parents[1]


def _count(path: Path, case, row: dict[str, str]) -> int:
    """The row's step count, recounted on CPU in float32 (a count depends on neither)."""
    impl = json.loads(row["impl"])
    classes = int(impl.get("classes", 1))
    case = dataclasses.replace(case, device="cpu", dtype="float32")
    torch.manual_seed(0)
    params = sum(p.numel() for p in case.build_model(classes).parameters())
    where = f"{path}: {row['task']}/{row['label']} seed {row['seed']}"
    if str(params) != row["params"]:
        raise SystemExit(f"{where}: the suite builds {params} parameters, the row has {row['params']}; the suite "
                         "changed since the run, so it cannot be recounted")
    res = int(row["train_res"])
    batch = min(int(impl["batch"]), int(row["n_train"]))  # the run counted the first batch of its training set
    x = torch.randn(batch, 1, res, res)
    if case.settings.problem == "regression":
        y = torch.randn(batch, 1, res, res)
        data, norm = TaskData("regression", (x, y), {}), (Normaliser(x), Normaliser(y))
    else:
        data, norm = TaskData("classification", (x, torch.randint(classes, (batch,))), {}, classes), None
    flops = case.count_step_flops(data, norm)
    if flops is None:
        raise SystemExit(f"{where}: the FLOP counter could not trace the model; nothing was written")
    return flops


def recount(path: Path, code_version: str) -> int:
    """Rewrite ``path``'s step_flops; returns how many values changed. Every count is made before anything is
    written, so an error leaves the file as it was."""
    if is_locked(path):
        raise SystemExit(f"{path}: a run is still writing it (its lock is held); recount it when the run is over")
    meta_path = path.with_suffix(".json")
    meta = json.loads(meta_path.read_text())
    suite = load_suite(ROOT / meta["suite_file"])
    # every learning rate of one task, label and seed builds the same model: one count serves them all
    cases = {(c.task, c.label, str(c.seed)): c for c in suite.cases}
    with path.open(newline="") as f:
        reader = csv.DictReader(f)
        fields, rows = list(reader.fieldnames or []), list(reader)
    upgraded = "step_flops" not in fields
    if upgraded:  # schema 7: every column of schema 8 but step_flops, which this fills in
        if [c for c in COLUMNS if c != "step_flops"] != fields:
            raise SystemExit(f"{path}: its header is neither results schema {SCHEMA_VERSION} nor the one before it")
        fields = list(COLUMNS)
        for row in rows:
            row["step_flops"], row["schema_version"] = "", str(SCHEMA_VERSION)
    counted: dict[tuple[str, str, str], int] = {}
    changed = 0
    for row in rows:
        if not row["params"] or not (row["step_flops"] or upgraded):  # no model built (a fault), or none counted
            continue
        key = (row["task"], row["label"], row["seed"])
        if key not in cases:
            raise SystemExit(f"{path}: {'/'.join(key[:2])} seed {key[2]} is not a case of {meta['suite_file']}")
        if key not in counted:
            counted[key] = _count(path, cases[key], row)
        changed += str(counted[key]) != row["step_flops"]
        row["step_flops"] = str(counted[key])
    tmp = path.with_suffix(".csv.tmp")
    try:
        with tmp.open("w", newline="") as f:
            writer = csv.DictWriter(f, fieldnames=fields, lineterminator="\n")
            writer.writeheader()
            writer.writerows(rows)
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
    meta["step_flops_recounted"] = {"code_version": code_version, "tool": "tools/recount_step_flops.py",
                                    **({"schema_upgraded_to": SCHEMA_VERSION} if upgraded else {})}
    meta_path.write_text(json.dumps(meta, indent=1, sort_keys=True) + "\n")
    return changed


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("csv", nargs="+", type=Path)
    args = parser.parse_args(argv)
    torch.set_num_threads(1)
    version = code_version()  # the commit (with a dirty-tree suffix) whose counter the runs' JSON will name
    for path in args.csv:
        print(f"{path}: {recount(path, version)} step_flops values changed", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
