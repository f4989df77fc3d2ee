"""The one row schema of every results file: column names, order, types and meaning, defined once.

The CSV header (:data:`COLUMNS`), the numeric columns the report converts (:data:`NUMERIC`) and the column list of
``results/README.md`` (:func:`columns_markdown`, checked by a test) are all generated from :data:`SCHEMA`. Cost and
training rows share it: a cost row leaves the accuracy columns empty and vice versa.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from attnbench.store.status import Status

__all__ = ["COLUMNS", "NUMERIC", "SCHEMA", "SCHEMA_VERSION", "Column", "columns_markdown", "format_value",
           "series_label"]

SCHEMA_VERSION = 8


@dataclass(frozen=True)
class Column:
    """One CSV column: ``type`` is ``str``, ``int``, ``float``, ``bool`` (written ``true``/``false``) or ``json``."""

    name: str
    type: str
    group: str
    doc: str = ""


def _cols(group: str, spec: str) -> tuple[Column, ...]:
    """``"name:type[:doc]; ..."`` → columns of one group (compact, so the table reads like the CSV header)."""
    out = []
    for item in filter(None, (part.strip() for part in spec.split(";"))):
        name, type_, *doc = item.split(":", 2)
        out.append(Column(name, type_, group, " ".join(doc[0].split()) if doc else ""))
    return tuple(out)


SCHEMA: tuple[Column, ...] = (
    *_cols("identity", """
        schema_version:int; run_id:str:the run (one machine, one code version, one start) the row belongs to;
        suite:str; kind:str:cost|accuracy; case_key:str:readable key + config_id, unique in a run;
        config_id:str:hash of the full configuration (everything that changes the measurement except the grid and
        the code version) — analyses group by it; label:str; attention:str; family:str:the mechanism's family
        (GridAttention.family: global, window, linear, reduction, multipole, operator, mixer), as reports group it;
        kwargs:json:constructor options in force, a named configuration's included; mode:str:fwd|fwd_bwd|train_step, or
        trained|zero_shot for accuracy; task:str; height:int; width:int; tokens:int:= H·W; batch:int; dim:int:C;
        heads:int; dtype:str; device:str; threads:int; compile:bool; seed:int; min_run_time:float:s, timing
        budget per case; min_blocks:int:timing blocks asked for; warmup:int:calls before timing; timeout:float:s"""),
    *_cols("outcome", f"status:str:{'|'.join(s.value for s in Status)}; reason:str"),
    *_cols("cost", """
        time_ms_median:float:ms per call, the median over timing blocks (each block: the mean of
        time_calls_per_block consecutive calls); time_ms_q1:float:ms, first quartile over blocks;
        time_ms_q3:float:ms, third quartile over blocks; time_ms_iqr:float:ms, q3 - q1; time_ms_min:float:ms,
        fastest block; time_ms_ci_lo:float:ms, 95 % bootstrap CI of the median (over blocks), lower end;
        time_ms_ci_hi:float:ms, upper end; time_n:int:number of timing blocks; time_calls_per_block:int;
        time_samples_ms:json:every block's per-call time, ms (asv keeps its samples too);
        minor_faults_per_call:float:page faults (minor) per call while timing — fresh pages the allocator had
        to map; load_start:float:1-min load average when the case started (accuracy: when training started);
        load_end:float:when it ended (accuracy: when training ended);
        flops:int:FLOPs of one call from the mechanism's formula (matmul-like work, fwd_bwd with the backward);
        bytes:int:minimum memory traffic of one call, from the mechanism's formula;
        gflops_per_s:float:flops / median time; gbytes_per_s:float:bytes / median time;
        peak_mib:float:MiB, see mem_kind — for accuracy rows the peak during training;
        mem_kind:str:cpu_rss|cuda_allocated;
        input_mib:float; params:int; compile_s:float;
        sdpa_backend:str:the SDPA kernel actually used (profiled in a replicated case's first process only);
        tf32:bool;
        impl:json:implementation facts such as mano's level count, swin's window path — for accuracy rows the
        dataset, model and optimiser settings"""),
    *_cols("accuracy", """
        metric:str:rel_l2|top1; value:float; rel_l2:float; rel_mse:float; top1:float; train_res:int; eval_res:int;
        token_height:int; token_width:int; patch:int; window_ratio:float:what one layer reaches / token grid side;
        step_flops:int:FLOPs of one training step (forward and backward of one batch) as torch's FlopCounterMode
        counts them, mended (attention as the math kernel's matmuls, grouped convolutions' weight gradients at
        their real size, FFTs and elementwise work not counted), the compute per step beside params;
        n_train:int; n_test:int; n_val:int:validation samples (training distribution, disjoint from train and
        test); val_value:float:the metric on the validation split at the training grid — what a tuned task's
        learning rate is chosen on; epochs:int; train_s:float:s, training wall time (curve evaluations left out);
        final_loss:float:mean training loss of the last epoch; curve:json:loss curve — train_loss per epoch, and
        test_value of test_metric at the training grid after every curve_every-th epoch (test_epoch)"""),
    *_cols("replication", """
        replicate:int:the round, and so the process, that measured this row of a replicated case (from 1, empty
        when a case is measured once) — its time_samples_ms are that process's blocks;
        round_position:int:the case's place in its round's shuffled order (from 1); order_seed:int:seed of the
        rounds' shuffles; cpu_steal_pct:float:% of CPU time the hypervisor stole while the case ran;
        speed_compute_ms:float:the round's compute canary, one 256² float32 matmul on the case's threads;
        speed_memory_ms:float:the round's memory canary, one copy of 32 MiB"""),
    *_cols("provenance", """
        torch:str; cuda:str; device_name:str; device_mem_gib:float; cpu_model:str; machine:str:results folder
        of the hardware (GPU model, or CPU model + cores); hostname:str; git_sha:str:with a dirty-tree suffix when
        tracked files differ; code_version:str:git sha + a hash of the uncommitted diff; attnbench:str; python:str;
        runtime:json:interpreter path, kernel-relevant environment variables, CPU capability, thread pools;
        timestamp:str; case_wall_s:float"""),
)

COLUMNS: tuple[str, ...] = tuple(c.name for c in SCHEMA)
NUMERIC: tuple[str, ...] = tuple(c.name for c in SCHEMA if c.type in ("int", "float"))


def format_value(value: Any) -> Any:
    """How a value is written to the CSV: ``None`` → empty, floats with 6 significant digits, booleans lower-case."""
    if value is None:
        return ""
    if isinstance(value, float):
        return f"{value:.6g}"
    if isinstance(value, bool):
        return str(value).lower()
    return value


def series_label(row: dict[str, Any]) -> str:
    """The name a row's series is shown under: compiled cases are a series of their own in every table and plot."""
    return str(row["label"]) + (" [compiled]" if str(row.get("compile")) == "true" else "")


def columns_markdown() -> str:
    """The column list of ``results/README.md``: one bullet per group, ``name (meaning)``."""
    lines = [f"## Columns (schema version {SCHEMA_VERSION})", ""]
    for group in dict.fromkeys(c.group for c in SCHEMA):
        items = [f"`{c.name}`" + (f" ({c.doc})" if c.doc else "") for c in SCHEMA if c.group == group]
        lines.append(f"- {group}: " + ", ".join(items))
    return "\n".join(lines) + "\n"
