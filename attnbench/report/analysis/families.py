"""Which series a cost figure draws together when a suite holds too many to read on one set of axes.

Up to :data:`MAX_SERIES` mechanisms share one figure. Beyond that, each family (the ``family`` column: the
mechanism's declared ``GridAttention.family``) gets a panel of its own, and every panel also draws the *seed four*
(:data:`SEED_FOUR`: global softmax, Swin, linear and MANO attention, the MANO paper's comparison) as references,
so a reader can place any family against the same four lines. A family with more members than fit is split into
parts. Pure: labels in, :class:`Panel` objects out; drawing them is the renderers'.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import pandas as pd

__all__ = ["MAX_SERIES", "OTHER", "SEED_FOUR", "Panel", "family_panels", "label_families", "reference_labels"]

# The reference series of every family panel: the mechanisms the MANO paper compares (one constant; labels as the
# suites write them).
SEED_FOUR: tuple[str, ...] = ("full", "swin", "linear", "mano")
# The most mechanisms one panel draws besides its references: more lines than this no longer read apart.
MAX_SERIES = 8
# The family of a row that declares none (a plugin that did not say, or a row from before families).
OTHER = "other"
# The tag a compiled case's series label carries (store.schema.series_label).
_COMPILED = " [compiled]"


@dataclass(frozen=True)
class Panel:
    """One set of axes: its ``members`` (drawn in colour) and ``references`` (drawn as references).

    ``family`` is empty for the single figure of a suite small enough to draw whole; ``part`` / ``parts`` number
    the panels of a family split because it has more than :data:`MAX_SERIES` members.
    """

    family: str
    members: tuple[str, ...]
    references: tuple[str, ...] = ()
    part: int = 1
    parts: int = 1

    @property
    def labels(self) -> tuple[str, ...]:
        """Every series the panel draws: members first, then references."""
        return self.members + self.references

    @property
    def suffix(self) -> str:
        """What a file stem gets appended: ``""`` for the whole-suite figure, ``_window``, ``_window-2``."""
        if not self.family:
            return ""
        return f"_{self.family}" + (f"-{self.part}" if self.parts > 1 else "")

    @property
    def name(self) -> str:
        """How a title names the panel: ``window family``, ``window family (2 of 3)``."""
        if not self.family:
            return ""
        return f"{self.family} family" + (f" ({self.part} of {self.parts})" if self.parts > 1 else "")


def label_families(df: pd.DataFrame) -> dict[str, str]:
    """label → family, in the order labels first appear; :data:`OTHER` where a label's rows declare none."""
    out: dict[str, str] = {}
    families = df["family"] if "family" in df else pd.Series("", index=df.index)
    for label, family in zip(df["label"], families):
        text = "" if pd.isna(family) else str(family).strip()
        if text and out.get(label, OTHER) == OTHER:
            out[label] = text
        else:
            out.setdefault(label, text or OTHER)
    return out


def reference_labels(df: pd.DataFrame, references: tuple[str, ...] = SEED_FOUR) -> list[str]:
    """The labels of ``df`` that are references, in the order of ``references``.

    A label is a reference when its label as written (``base_label``: compiled cases keep their ``[compiled]``
    tag, so a compiled variant is a series of its own and not a reference) is one of ``references``.
    """
    base = df["base_label"] if "base_label" in df else df["label"]
    pairs = dict.fromkeys(zip(df["label"], base))
    return [label for ref in references for label, written in pairs if written == ref]


def _family_order(families: dict[str, str], refs: list[str]) -> list[str]:
    """The reference series' families first, in reference order (so panels open with the families a reader
    knows), then the others by name, :data:`OTHER` last."""
    first = list(dict.fromkeys(families[r] for r in refs if families[r] != OTHER))
    rest = sorted(set(families.values()) - set(first) - {OTHER})
    return first + rest + ([OTHER] if OTHER in families.values() else [])


def _chunks(members: list[str], size: int) -> list[list[str]]:
    """``members`` in near-equal consecutive parts of at most ``size`` (9 → 5 + 4, not 8 + 1)."""
    parts = math.ceil(len(members) / size)
    step = math.ceil(len(members) / parts)
    return [members[i:i + step] for i in range(0, len(members), step)]


def _mechanism(label: str) -> str:
    """The mechanism a series label belongs to: a compiled variant (``x [compiled]``, the tag
    :func:`~attnbench.store.schema.series_label` adds) is drawn beside its eager series in the same colour, so the
    pair counts as one mechanism and always shares a panel."""
    return label.removesuffix(_COMPILED)


def family_panels(df: pd.DataFrame, references: tuple[str, ...] = SEED_FOUR,
                  max_series: int = MAX_SERIES) -> list[Panel]:
    """The panels the rows ``df`` (one suite and mode) are drawn in.

    At most ``max_series`` mechanisms in all (a compiled variant counts with its eager series): one panel with
    every label and no family (today's single figure). Otherwise one panel per family, in :func:`_family_order`,
    with that family's labels as members (at most ``max_series`` mechanisms each, a larger family split into
    parts) and every label of ``references`` present in ``df`` that is not a member of the panel as a reference.
    """
    families = label_families(df)
    labels = list(families)
    if len(dict.fromkeys(map(_mechanism, labels))) <= max_series:
        return [Panel("", tuple(labels))]
    refs = reference_labels(df, references)
    panels = []
    for family in _family_order(families, refs):
        mechanisms = list(dict.fromkeys(_mechanism(label) for label in labels if families[label] == family))
        parts = _chunks(mechanisms, max_series)
        for i, part in enumerate(parts, start=1):
            members = tuple(label for label in labels if families[label] == family and _mechanism(label) in part)
            others = tuple(r for r in refs if r not in members)
            panels.append(Panel(family, members, others, i, len(parts)))
    return panels
