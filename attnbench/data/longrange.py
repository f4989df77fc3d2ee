"""Long-range same/different: a synthetic task that a model with a local receptive field can only guess.

A scene in [0,1]² holds two *key* glyphs (full intensity) whose centres are at least 0.6 apart, plus 6–10
*distractor* glyphs of the same shapes at half intensity that never overlap a key. The label is 1 if the two keys
have the same shape, else 0. Glyphs are strokes drawn from K = 6 shapes (ring, cross, triangle, square outline, bar,
T), rotated by a multiple of 90°, with an outer size of 0.10–0.14 (bounding box side) and a stroke width of 0.15 × size.

The scene is continuous: pixel value = clip(0.5 − sdf/Δ, 0, 1) with Δ the pixel width, so the same seed renders the
same scene at any resolution (anti-aliased). Scene i uses its own generators seeded from (seed, i), so the draw does not
depend on n or on the resolution; the per-pixel noise (σ = 0.1 by default) is seeded the same way but differs between
resolutions. Labels are exactly balanced within each consecutive pair (i = 2k, 2k+1), so any even n is balanced.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

__all__ = ["MIN_KEY_DISTANCE", "SHAPES", "SIZE_RANGE", "VARIANTS", "Scene", "Variant", "make", "render", "scenes"]

SHAPES = ("ring", "cross", "triangle", "square", "bar", "T")
SIZE_RANGE = (0.10, 0.14)
MIN_KEY_DISTANCE = 0.6
DISTRACTORS = (6, 10)
STROKE = 0.15  # stroke width as a fraction of the glyph size
GAP = 0.02  # clearance between bounding circles of glyphs that must not overlap


@dataclass(frozen=True)
class Variant:
    """Difficulty knobs of the task; the structure (two keys >= 0.6 apart among distractors) never changes."""

    shapes: int = len(SHAPES)  # the first ``shapes`` entries of SHAPES are used
    size_range: tuple[float, float] = SIZE_RANGE
    distractors: tuple[int, int] = DISTRACTORS
    rotate: bool = True
    noise: float = 0.1

    @property
    def margin(self) -> float:  # keeps every rotated glyph fully inside the unit square
        return self.size_range[1] / 2 * np.sqrt(2) + 0.01


# "standard" is data.md §2.3. "easy" keeps the long-range structure but makes the glyphs learnable on a CPU
# budget: three distinct shapes (ring, cross, triangle), bigger, upright, fewer distractors, less noise.
VARIANTS = {
    "standard": Variant(),
    "easy": Variant(shapes=2, size_range=(0.2, 0.25), distractors=(2, 2), rotate=False, noise=0.05),
}


@dataclass
class Scene:
    """One scene; glyphs 0 and 1 are the keys.

    Attributes:
        shape: int [G], index into SHAPES.
        rotation: int [G], quarter turns 0..3.
        size: float [G], bounding-box side.
        centre: float [G, 2], (x, y) in [0,1]², x along image columns, y along rows.
        amplitude: float [G], 1.0 for keys, 0.5 for distractors.
        label: 1 if the keys share a shape, else 0.
    """

    shape: np.ndarray
    rotation: np.ndarray
    size: np.ndarray
    centre: np.ndarray
    amplitude: np.ndarray
    label: int


def _fits(c: np.ndarray, radius: float, centres: list[np.ndarray], radii: list[float]) -> bool:
    return all(np.hypot(*(c - o)) >= radius + r + GAP for o, r in zip(centres, radii))


def _scene(seed: int, i: int, v: Variant = VARIANTS["standard"]) -> Scene:
    rng = np.random.default_rng([seed, i, 0])
    # The label is fixed per pair of consecutive samples: one "same", one "different", order chosen at random.
    label = int((i % 2) ^ np.random.default_rng([seed, i // 2, 2]).integers(2))
    k = v.shapes
    s1 = int(rng.integers(k))
    s2 = s1 if label else int((s1 + rng.integers(1, k)) % k)
    lo, hi = v.margin, 1.0 - v.margin
    while True:  # redraw both: a first centre near the middle may have no partner 0.6 away at all
        c1, c2 = rng.uniform(lo, hi, 2), rng.uniform(lo, hi, 2)
        if np.hypot(*(c2 - c1)) >= MIN_KEY_DISTANCE:
            break
    shapes, centres = [s1, s2], [c1, c2]
    sizes = list(rng.uniform(*v.size_range, 2))
    radii = [s / 2 * np.sqrt(2) for s in sizes]
    for _ in range(int(rng.integers(v.distractors[0], v.distractors[1] + 1))):
        size = float(rng.uniform(*v.size_range))
        radius = size / 2 * np.sqrt(2)
        for attempt in range(400):
            c = rng.uniform(lo, hi, 2)
            # Prefer a free spot; after 200 tries only the keys must stay clear (distractors may then touch).
            others = (centres, radii) if attempt < 200 else (centres[:2], radii[:2])
            if _fits(c, radius, *others):
                break
        else:
            continue  # practically unreachable: the keys cover < 10 % of the square
        shapes.append(int(rng.integers(k)))
        centres.append(c)
        sizes.append(size)
        radii.append(radius)
    g = len(shapes)
    rotation = rng.integers(4, size=g) if v.rotate else np.zeros(g, dtype=int)
    return Scene(shape=np.array(shapes), rotation=rotation, size=np.array(sizes),
                 centre=np.array(centres), amplitude=np.where(np.arange(g) < 2, 1.0, 0.5), label=label)


def scenes(n: int, seed: int, variant: str = "standard") -> list[Scene]:
    """Scene parameters for samples 0..n−1 of ``seed`` (resolution-free; edit one for a key-swap control)."""
    v = _variant(variant)
    return [_scene(seed, i, v) for i in range(n)]


def _variant(name: str) -> Variant:
    if name not in VARIANTS:
        raise ValueError(f"longrange variant {name!r} is unknown; expected one of {', '.join(VARIANTS)}")
    return VARIANTS[name]


def _box(px: np.ndarray, py: np.ndarray, bx: np.ndarray, by: np.ndarray) -> np.ndarray:
    """Signed distance to an axis-aligned box of half-sides (bx, by) centred at the origin."""
    qx, qy = np.abs(px) - bx, np.abs(py) - by
    return np.hypot(np.maximum(qx, 0), np.maximum(qy, 0)) + np.minimum(np.maximum(qx, qy), 0)


def _triangle(px: np.ndarray, py: np.ndarray, a: np.ndarray) -> np.ndarray:
    """Signed distance to an equilateral triangle, centroid at the origin, half-side a, apex towards +y."""
    k = np.sqrt(3.0)
    px = np.abs(px) - a
    py = py + a / k
    flip = px + k * py > 0  # fold the plane onto the edge nearest to the point
    px, py = np.where(flip, (px - k * py) / 2, px), np.where(flip, (-k * px - py) / 2, py)
    px = px - np.clip(px, -2 * a, 0)
    return -np.hypot(px, py) * np.sign(py)


def _sdf(shape: int, px: np.ndarray, py: np.ndarray, r: np.ndarray, w: np.ndarray) -> np.ndarray:
    """Distance to the stroke of one shape kind; r = half-size, w = stroke width, both [G, 1, 1]."""
    name = SHAPES[shape]
    if name == "ring":
        return np.abs(np.hypot(px, py) - (r - w / 2)) - w / 2
    if name == "cross":
        return np.minimum(_box(px, py, r, w / 2), _box(px, py, w / 2, r))
    if name == "triangle":
        return np.abs(_triangle(px, py, (r - w / 2) * np.sqrt(3.0) / 2)) - w / 2
    if name == "square":
        return np.abs(_box(px, py, r - w / 2, r - w / 2)) - w / 2
    if name == "bar":
        return _box(px, py, r, w / 2)
    # T: a full-width top bar and a stem hanging from it
    return np.minimum(_box(px, py - (r - w / 2), r, w / 2), _box(px, py + w / 2, w / 2, r - w / 2))


def _render_chunk(chunk: list[Scene], resolution: int) -> np.ndarray:
    """Noise-free images float32 [B, res, res] of a few scenes, all glyphs of one shape kind at a time."""
    b = len(chunk)
    img_idx = np.concatenate([np.full(len(s.shape), j) for j, s in enumerate(chunk)])
    shape = np.concatenate([s.shape for s in chunk])
    rot = np.concatenate([s.rotation for s in chunk])
    size = np.concatenate([s.size for s in chunk]).astype(np.float32)
    centre = np.concatenate([s.centre for s in chunk]).astype(np.float32)
    amp = np.concatenate([s.amplitude for s in chunk]).astype(np.float32)
    t = (np.arange(resolution, dtype=np.float32) + 0.5) / resolution  # pixel centres
    out = np.zeros((b, resolution, resolution), dtype=np.float32)
    for kind in np.unique(shape):
        sel = np.flatnonzero(shape == kind)
        dx = t[None, None, :] - centre[sel, 0, None, None]
        dy = t[None, :, None] - centre[sel, 1, None, None]
        # Quarter-turn rotation into the glyph frame: exact cos/sin in {-1, 0, 1}.
        c = np.round(np.cos(rot[sel] * np.pi / 2)).astype(np.float32)[:, None, None]
        s = np.round(np.sin(rot[sel] * np.pi / 2)).astype(np.float32)[:, None, None]
        px, py = c * dx + s * dy, -s * dx + c * dy
        r = (size[sel] / 2)[:, None, None]
        d = _sdf(int(kind), px, py, r, STROKE * 2 * r)
        value = np.clip(0.5 - d * resolution, 0.0, 1.0) * amp[sel, None, None]
        np.maximum.at(out, img_idx[sel], value)  # overlapping glyphs take the brighter value
    return out


def render(scene_list: list[Scene], resolution: int, noise: float = 0.1, seed: int = 0) -> torch.Tensor:
    """Render scenes at one resolution.

    Args:
        scene_list: Scenes, e.g. from :func:`scenes`.
        resolution: Pixels per side.
        noise: Standard deviation of the additive Gaussian pixel noise (0 = clean).
        seed: Seed of the noise; scene i uses a generator seeded from (seed, i).

    Returns:
        float32 [n, 1, res, res].
    """
    n = len(scene_list)
    out = np.empty((n, resolution, resolution), dtype=np.float32)
    step = max(1, 2**22 // (12 * resolution * resolution))  # ~4M glyph-pixels per chunk keeps temporaries small
    for i in range(0, n, step):
        out[i:i + step] = _render_chunk(scene_list[i:i + step], resolution)
    if noise > 0:
        for i in range(n):
            out[i] += noise * np.random.default_rng([seed, i, 1]).standard_normal(
                (resolution, resolution), dtype=np.float32)
    return torch.from_numpy(out).unsqueeze(1)


def make(n: int, resolution: int, seed: int, noise: float | None = None,
         variant: str = "standard") -> tuple[torch.Tensor, torch.Tensor]:
    """n samples of the long-range same/different task.

    Args:
        n: Number of samples (even n gives exactly n/2 of each label).
        resolution: Pixels per side; the scenes do not depend on it.
        seed: Seed of scenes, labels and noise.
        noise: Pixel noise σ (default: the variant's).
        variant: ``standard`` (data.md §2.3) or ``easy`` (see :data:`VARIANTS`).

    Returns:
        (images float32 [n, 1, res, res], labels int64 [n]).
    """
    if n < 1 or resolution < 1:
        raise ValueError(f"n and resolution must be positive, got n={n}, resolution={resolution}")
    sc = scenes(n, seed, variant)
    labels = torch.tensor([s.label for s in sc], dtype=torch.int64)
    return render(sc, resolution, _variant(variant).noise if noise is None else noise, seed), labels
