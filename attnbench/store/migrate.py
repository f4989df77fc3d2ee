"""Older result rows brought up to the current schema once, when they are read (as asv migrates its results when
its version changes), so that no analysis branches on a schema version.

* **Schema 1** (before ``config_id`` and the quartiles were recorded): ``config_id`` is derived from the identity
  columns the row has (prefix ``v1-``); ``time_ms_q1`` / ``time_ms_q3`` become the median ∓ half the IQR, the only
  spread such a row stored. Such rows keep no timing blocks (``time_samples_ms`` is empty), and whatever reads the
  spread says so where the blocks are missing.
* **Schema 5 and older** (before rows recorded the mechanism's ``family``): the family of the mechanisms that
  existed then, by registry name (a plugin's row gets ``other``).
* **Rows written before ``impl`` recorded ``classes``**: the class count of the classification datasets is added,
  so a chance level can be computed for them.

Files on disk are never rewritten: committed results stay what was measured.
"""

from __future__ import annotations

import hashlib
import json

__all__ = ["upgrade_row"]

# Identity columns of a schema-1 row, hashed into its derived configuration id.
_V1_IDENTITY = ("kind", "attention", "kwargs", "mode", "batch", "dim", "heads", "dtype", "device", "threads",
                "compile", "tf32", "task")
# Classes of the classification datasets, for rows written before ``impl`` recorded ``classes``.
_CLASSES = {"fashion": 10, "longrange": 2}
# Families of the mechanisms rows named before schema 6 recorded ``family`` (their declared GridAttention.family).
_FAMILIES_BEFORE_6 = {"full": "global", "full_naive": "global", "full_xformers": "global", "planted_full": "global",
                      "swin": "window", "neighborhood": "window", "linear": "linear", "mano": "multipole",
                      "mano_reference": "multipole"}


def _derived_config_id(row: dict[str, str]) -> str:
    text = json.dumps([str(row.get(k, "")) for k in _V1_IDENTITY])
    return "v1-" + hashlib.sha256(text.encode()).hexdigest()[:7]


def _quartiles_from_iqr(row: dict[str, str]) -> dict[str, str]:
    try:
        median, iqr = float(row["time_ms_median"]), float(row["time_ms_iqr"])
    except (KeyError, ValueError):
        return {}
    return {"time_ms_q1": repr(median - iqr / 2), "time_ms_q3": repr(median + iqr / 2)}


def _with_classes(impl: str) -> str:
    try:
        facts = json.loads(impl)
    except ValueError:
        return impl
    if not isinstance(facts, dict) or "classes" in facts or facts.get("dataset") not in _CLASSES:
        return impl
    return json.dumps({**facts, "classes": _CLASSES[facts["dataset"]]})


def upgrade_row(row: dict[str, str]) -> dict[str, str]:
    """A raw row (strings, as read from a CSV) in the current schema's terms; the input is not modified."""
    out = dict(row)
    if not out.get("config_id"):
        out["config_id"] = _derived_config_id(out)
    if not out.get("time_ms_q1") and out.get("time_ms_iqr") and out.get("time_ms_median"):
        out.update(_quartiles_from_iqr(out))
    if not out.get("family"):
        attention = out.get("attention", "")
        base = next((m for m in sorted(_FAMILIES_BEFORE_6, key=len, reverse=True) if attention.startswith(m)), None)
        out["family"] = _FAMILIES_BEFORE_6[base] if base else "other"
    if out.get("kind") == "accuracy" and out.get("impl"):
        out["impl"] = _with_classes(out["impl"])
    return out
