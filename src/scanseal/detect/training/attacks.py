"""A second tampering implementation, for evaluation only: never used to train.

The figures on unseen sources (:mod:`scanseal.detect.training.unseen`) must not reward a
network for learning the artefacts of the generators it trained on
(:mod:`scanseal.detect.training.synth`), so the attacks here are written apart from those:
other region shapes (random star polygons drawn by Pillow, not analytic blobs), other blending
(Poisson cloning solved on the region, a Gaussian-feathered edge, or a hard alpha with the
target's noise put back), other filters (FFT Gaussian, median, box), other inpainting
(normalised convolution with texture resampled from the region's surroundings) and other
parameter ranges. Nothing here imports synth.

Every attack takes a ``numpy.random.Generator`` and a float32 plane in [0, 1] of any size, and
returns the tampered plane and its ground-truth mask (the edited region and every pixel the
edit weighs at least one half; every changed pixel lies within ``FEATHER_MAX`` pixels of it).
The same seed gives the same result bit for bit. The nibabel and scikit-image data are never
used here or by the evaluation.
"""

from __future__ import annotations

import io
from collections.abc import Callable
from typing import Any, Final

import numpy as np
from PIL import Image, ImageDraw, ImageFilter

Plane = np.ndarray[Any, np.dtype[np.float32]]
Mask = np.ndarray[Any, np.dtype[np.bool_]]
Rng = np.random.Generator
Attack = Callable[[Rng, Plane, Plane], tuple[Plane, Mask]]

BLENDS: Final[tuple[str, ...]] = ("poisson", "feather", "alpha_noise")
FEATHER_MAX: Final = 6
"""How far (pixels) beyond its mask an edit may still change pixels."""


# --- filters (FFT and order statistics; synth uses separable loops) --------------------------


def fft_gauss(plane: np.ndarray[Any, Any], sigma: float) -> Plane:
    """Gaussian blur by FFT on a reflected (mirror-padded) copy, so edges do not wrap."""
    if sigma <= 0:
        return np.asarray(plane, np.float32)
    rows, cols = plane.shape
    pad = min(int(4 * sigma) + 1, rows - 1, cols - 1)
    padded = np.pad(np.asarray(plane, np.float64), pad, mode="symmetric")
    fy = np.fft.fftfreq(padded.shape[0])[:, None]
    fx = np.fft.rfftfreq(padded.shape[1])[None, :]
    kernel = np.exp(-2 * (np.pi * sigma) ** 2 * (fy**2 + fx**2))
    out = np.fft.irfft2(np.fft.rfft2(padded) * kernel, s=padded.shape)
    return np.asarray(out[pad : pad + rows, pad : pad + cols], np.float32)


def _median3(plane: Plane) -> Plane:
    """3×3 median (edge-replicated)."""
    padded = np.pad(plane, 1, mode="edge")
    rows, cols = plane.shape
    stack = [padded[dy : dy + rows, dx : dx + cols] for dy in range(3) for dx in range(3)]
    return np.asarray(np.median(np.stack(stack), axis=0), np.float32)


def box_mean(plane: Plane, half: int) -> Plane:
    """Mean over a (2·half+1)² box by summed-area table (edge-replicated)."""
    side = 2 * half + 1
    padded = np.pad(plane.astype(np.float64), ((half + 1, half), (half + 1, half)), mode="edge")
    table = padded.cumsum(0).cumsum(1)
    total = table[side:, side:] - table[:-side, side:] - table[side:, :-side]
    total += table[:-side, :-side]
    return np.asarray(total / side**2, np.float32)


def noise_sigma(plane: Plane, where: Mask | None = None) -> float:
    """Pixel noise from horizontal first differences (MAD), optionally over ``where`` only."""
    diff = np.abs(np.diff(plane.astype(np.float64), axis=1))
    if where is not None:
        diff = diff[where[:, 1:] & where[:, :-1]]
    if diff.size == 0:
        return 0.0
    return float(np.median(diff) / 0.6745 / np.sqrt(2.0))


def _dilate(mask: Mask, radius: int) -> Mask:
    """Binary dilation by a square of side 2·radius+1."""
    if radius <= 0:
        return mask
    return np.asarray(box_mean(mask.astype(np.float32), radius) > 1e-6)


def _gaussian(rng: Rng, shape: tuple[int, ...]) -> Plane:
    """Unit white noise of ``shape``."""
    return np.asarray(rng.standard_normal(shape), np.float32)


def _clip(plane: np.ndarray[Any, Any]) -> Plane:
    return np.asarray(np.clip(plane, 0.0, 1.0), np.float32)


# --- regions: random star polygons, placed on the body --------------------------------------


def polygon(rng: Rng, shape: tuple[int, int], centre: tuple[float, float], radius: float) -> Mask:
    """A star-shaped polygon of 7–15 vertices with radii 0.55–1.0 × ``radius``."""
    count = int(rng.integers(7, 16))
    angles = np.sort(rng.uniform(0, 2 * np.pi, count))
    radii = radius * rng.uniform(0.55, 1.0, count)
    cy, cx = centre
    points = [(cx + r * np.cos(a), cy + r * np.sin(a)) for a, r in zip(angles, radii, strict=True)]
    canvas = Image.new("L", (shape[1], shape[0]), 0)
    ImageDraw.Draw(canvas).polygon([(float(x), float(y)) for x, y in points], fill=255)
    return np.asarray(canvas) > 127


def _centre(rng: Rng, plane: Plane, radius: float) -> tuple[int, int]:
    """A centre whose disc lies inside the image, drawn from the brighter half of the body."""
    rows, cols = plane.shape
    margin = int(radius) + FEATHER_MAX + 2
    smooth = fft_gauss(plane, 3.0)
    inner = smooth[margin : rows - margin, margin : cols - margin]
    if inner.size == 0:
        return rows // 2, cols // 2
    candidates = np.argwhere(inner >= np.quantile(inner, 0.5))
    cy, cx = candidates[int(rng.integers(len(candidates)))]
    return int(cy) + margin, int(cx) + margin


def _radius(rng: Rng, plane: Plane, low: float = 0.045, high: float = 0.16) -> float:
    return float(rng.uniform(low, high) * min(plane.shape))


def _truth(region: Mask, weight: Plane) -> Mask:
    """The edited region and every pixel the edit weighs at least one half."""
    return np.asarray(region | (weight >= 0.5))


# --- blending ---------------------------------------------------------------------------------


def _feather(region: Mask, sigma: float) -> Plane:
    """Soft weight: the region blurred, zero beyond ``FEATHER_MAX`` pixels of it."""
    weight = fft_gauss(region.astype(np.float32), sigma)
    weight[~_dilate(region, FEATHER_MAX)] = 0.0
    return np.asarray(np.clip(weight * 1.02, 0, 1), np.float32)


def poisson(target: Plane, source: Plane, region: Mask, iterations: int = 400) -> Plane:
    """Poisson cloning: inside ``region`` keep ``source``'s gradients, meet ``target`` at the
    border (Jacobi iterations on the region's bounding box, started from the mean offset)."""
    ys, xs = np.nonzero(region)
    if ys.size == 0:
        return target.copy()
    y0, y1 = max(ys.min() - 1, 0), min(ys.max() + 2, target.shape[0])
    x0, x1 = max(xs.min() - 1, 0), min(xs.max() + 2, target.shape[1])
    t = target[y0:y1, x0:x1].astype(np.float64)
    s = source[y0:y1, x0:x1].astype(np.float64)
    inside = region[y0:y1, x0:x1].copy()
    inside[[0, -1], :] = False
    inside[:, [0, -1]] = False
    border = _dilate(inside, 1) & ~inside
    offset = float(np.mean((t - s)[border])) if border.any() else 0.0
    lap_s = 4 * s - _neighbours(s)
    f = np.where(inside, s + offset, t)
    for _ in range(iterations):
        f = np.where(inside, (_neighbours(f) + lap_s) / 4, t)
    out = target.copy()
    out[y0:y1, x0:x1] = f.astype(np.float32)
    return out


def _neighbours(a: np.ndarray[Any, Any]) -> np.ndarray[Any, Any]:
    p = np.pad(a, 1, mode="edge")
    return np.asarray(p[:-2, 1:-1] + p[2:, 1:-1] + p[1:-1, :-2] + p[1:-1, 2:])


def blend(rng: Rng, target: Plane, source: Plane, region: Mask, how: str) -> tuple[Plane, Plane]:
    """Put ``source`` into ``target`` over ``region``; the result and its edit weight."""
    if how == "poisson":
        return _clip(poisson(target, source, region)), region.astype(np.float32)
    if how == "feather":
        weight = _feather(region, float(rng.uniform(0.8, 2.2)))
        return _clip(target * (1 - weight) + source * weight), weight
    if how == "alpha_noise":
        weight = _feather(region, 0.6)
        mixed = target * (1 - weight) + source * weight
        return _match_noise(rng, mixed, target, weight), weight
    raise ValueError(f"unknown blend {how!r}")


def _match_noise(rng: Rng, mixed: Plane, target: Plane, weight: Plane) -> Plane:
    """Add back the noise the edit lost, so the region's noise level meets its surroundings'."""
    inside = weight >= 0.5
    ring = _dilate(inside, 8) & ~_dilate(inside, 2)
    wanted = noise_sigma(target, ring if ring.sum() > 20 else None)
    have = noise_sigma(mixed, inside) if inside.sum() > 20 else 0.0
    extra = float(np.sqrt(max(wanted**2 - have**2, 0.0)))
    noise = _gaussian(rng, mixed.shape) * extra
    return _clip(mixed + noise * weight)


def _pick_blend(rng: Rng) -> str:
    return str(BLENDS[int(rng.integers(len(BLENDS)))])


# --- the tamper families ---------------------------------------------------------------------


def copy_move(rng: Rng, plane: Plane, _donor: Plane) -> tuple[Plane, Mask]:
    """A region of the image itself, turned or mirrored, pasted at least a diameter away."""
    radius = _radius(rng, plane)
    cy, cx = _centre(rng, plane, radius)
    for _ in range(30):
        sy, sx = _centre(rng, plane, radius)
        if np.hypot(sy - cy, sx - cx) > 2.2 * radius:
            break
    half = int(radius) + 2
    patch = _window(plane, sy, sx, half)
    patch = _orient(rng, patch)
    source = plane.copy()
    _put(source, patch, cy, cx, half)
    region = polygon(rng, plane.shape, (cy, cx), radius)
    out, weight = blend(rng, plane, source, region, _pick_blend(rng))
    return out, _truth(region, weight)


def _window(plane: Plane, cy: int, cx: int, half: int) -> Plane:
    padded = np.pad(plane, half, mode="reflect")
    return padded[cy : cy + 2 * half + 1, cx : cx + 2 * half + 1].copy()


def _put(into: Plane, patch: Plane, cy: int, cx: int, half: int) -> None:
    rows, cols = into.shape
    y0, x0 = cy - half, cx - half
    ty0, tx0 = max(y0, 0), max(x0, 0)
    ty1, tx1 = min(y0 + patch.shape[0], rows), min(x0 + patch.shape[1], cols)
    into[ty0:ty1, tx0:tx1] = patch[ty0 - y0 : ty1 - y0, tx0 - x0 : tx1 - x0]


def _orient(rng: Rng, patch: Plane) -> Plane:
    """One of the eight square symmetries, the identity a third of the time."""
    if rng.random() < 1 / 3:
        return patch
    turned = np.rot90(patch, int(rng.integers(0, 4)))
    return np.ascontiguousarray(turned[:, ::-1] if rng.random() < 0.5 else turned)


def splice(rng: Rng, plane: Plane, donor: Plane) -> tuple[Plane, Mask]:
    """A region of another image (another source where the caller gives one), its mean and
    spread matched to the target's surroundings, then blended in."""
    radius = _radius(rng, plane)
    cy, cx = _centre(rng, plane, radius)
    other = _fit(donor, plane.shape)
    sy, sx = _centre(rng, other, radius)
    half = int(radius) + 2
    patch = _window(other, sy, sx, half)
    local = _window(plane, cy, cx, half)
    scale = float(local.std() / (patch.std() + 1e-4)) * float(rng.uniform(0.8, 1.25))
    patch = (patch - patch.mean()) * min(scale, 4.0) + local.mean()
    source = plane.copy()
    _put(source, patch.astype(np.float32), cy, cx, half)
    region = polygon(rng, plane.shape, (cy, cx), radius)
    out, weight = blend(rng, plane, source, region, _pick_blend(rng))
    return out, _truth(region, weight)


def _fit(other: Plane, shape: tuple[int, int]) -> Plane:
    if other.shape == shape:
        return other
    image = Image.fromarray(np.asarray(other, np.float32))
    return np.asarray(image.resize((shape[1], shape[0]), Image.Resampling.BICUBIC), np.float32)


def lesion_inject(rng: Rng, plane: Plane, _donor: Plane) -> tuple[Plane, Mask]:
    """A lobulated mass (sum of 2–5 Gaussian lumps with a mottled core), brighter or darker
    than its surroundings by 1.5–6 local standard deviations, with the noise put back."""
    radius = _radius(rng, plane, 0.03, 0.11)
    cy, cx = _centre(rng, plane, radius)
    yy, xx = np.mgrid[: plane.shape[0], : plane.shape[1]].astype(np.float32)
    profile = np.zeros(plane.shape, np.float32)
    for _ in range(int(rng.integers(2, 6))):
        oy, ox = rng.normal(0, radius * 0.35, 2)
        width = radius * float(rng.uniform(0.35, 0.7))
        lump = np.exp(-((yy - cy - oy) ** 2 + (xx - cx - ox) ** 2) / (2 * width**2))
        profile = np.maximum(profile, lump.astype(np.float32))
    mottle = fft_gauss(_gaussian(rng, plane.shape), radius / 6)
    mottle /= float(mottle.std() + 1e-6)
    region = np.asarray(profile >= 0.5)
    ring = _dilate(region, 10) & ~_dilate(region, 3)
    spread = float(plane[ring].std()) if ring.any() else float(plane.std())
    contrast = float(rng.uniform(1.5, 6.0)) * max(spread, 0.02) * float(rng.choice([-1.0, 1.0]))
    shape = profile * (1 + 0.25 * mottle)
    shape[~_dilate(region, FEATHER_MAX)] = 0.0
    out = _clip(plane + contrast * shape)  # additive: the tissue's own noise stays under it
    return out, _truth(region, np.zeros_like(out))


def lesion_remove(rng: Rng, plane: Plane, _donor: Plane) -> tuple[Plane, Mask]:
    """Erase a structure: normalised-convolution fill from the surroundings, with residual
    texture resampled from a ring around the hole, feathered at the border."""
    radius = _radius(rng, plane, 0.035, 0.12)
    cy, cx = _centre(rng, plane, radius)
    hole = polygon(rng, plane.shape, (cy, cx), radius)
    known = (~hole).astype(np.float32)
    sigma = max(radius / 2.5, 1.5)
    fill = fft_gauss(plane * known, sigma) / np.maximum(fft_gauss(known, sigma), 1e-3)
    for _ in range(2):  # refine: smaller scale from the first fill
        sigma /= 2
        guess = np.where(hole, fill, plane).astype(np.float32)
        fill = np.where(hole, fft_gauss(guess, max(sigma, 1.0)), fill).astype(np.float32)
    ring = _dilate(hole, 12) & ~_dilate(hole, 2)
    residual = (plane - fft_gauss(plane, 1.5))[ring]
    texture = np.zeros(plane.shape, np.float32)
    if residual.size:
        texture[hole] = rng.choice(residual, int(hole.sum()))
    source = np.asarray(fill + texture * float(rng.uniform(0.6, 1.0)), np.float32)
    weight = _feather(hole, float(rng.uniform(0.7, 1.8)))
    out = _clip(plane * (1 - weight) + source * weight)
    return out, _truth(hole, weight)


def intensity(rng: Rng, plane: Plane, _donor: Plane) -> tuple[Plane, Mask]:
    """A local tone edit: gamma 0.55–0.8 or 1.3–1.9, or contrast about the region's mean
    ×0.4–0.7 or ×1.5–2.2, or a shift of ±3–8 local noise levels plus 0.03–0.1."""
    radius = _radius(rng, plane, 0.05, 0.2)
    cy, cx = _centre(rng, plane, radius)
    region = polygon(rng, plane.shape, (cy, cx), radius)
    kind = int(rng.integers(3))
    if kind == 0:
        gamma = rng.uniform(0.55, 0.8) if rng.random() < 0.5 else rng.uniform(1.3, 1.9)
        edited = np.power(np.clip(plane, 0, 1), gamma)
    elif kind == 1:
        gain = rng.uniform(0.4, 0.7) if rng.random() < 0.5 else rng.uniform(1.5, 2.2)
        mean = float(plane[region].mean()) if region.any() else 0.5
        edited = (plane - mean) * gain + mean
    else:
        step = rng.uniform(3, 8) * noise_sigma(plane) + rng.uniform(0.03, 0.1)
        edited = plane + step * rng.choice([-1.0, 1.0])
    weight = _feather(region, float(rng.uniform(1.0, 2.5)))
    out = _clip(plane * (1 - weight) + edited * weight)
    return out, _truth(region, weight)


def retouch(rng: Rng, plane: Plane, _donor: Plane) -> tuple[Plane, Mask]:
    """Local smoothing or noise: a 3×3 median twice, a box mean of side 5–9, an FFT blur of
    σ 1.2–3, or signal-dependent noise of 2–5 local noise levels (at least 0.01)."""
    radius = _radius(rng, plane, 0.05, 0.18)
    cy, cx = _centre(rng, plane, radius)
    region = polygon(rng, plane.shape, (cy, cx), radius)
    kind = int(rng.integers(4))
    if kind == 0:
        edited = _median3(_median3(plane))
    elif kind == 1:
        edited = box_mean(plane, int(rng.integers(2, 5)))
    elif kind == 2:
        edited = fft_gauss(plane, float(rng.uniform(1.2, 3.0)))
    else:
        level = max(float(rng.uniform(2, 5)) * noise_sigma(plane), 0.01)
        scale = np.sqrt(np.clip(plane, 0.05, 1) / max(float(plane.mean()), 0.05))
        edited = plane + _gaussian(rng, plane.shape) * level * scale
    weight = _feather(region, float(rng.uniform(0.7, 1.6)))
    out = _clip(plane * (1 - weight) + edited * weight)
    return out, _truth(region, weight)


ATTACKS: Final[dict[str, Attack]] = {
    "copy_move": copy_move,
    "splice": splice,
    "lesion_inject": lesion_inject,
    "lesion_remove": lesion_remove,
    "intensity": intensity,
    "retouch": retouch,
}
FAMILIES: Final[tuple[str, ...]] = tuple(ATTACKS)
"""The tamper families of the evaluation (the issue's six)."""


def tamper(family: str, rng: Rng, plane: Plane, donor: Plane) -> tuple[Plane, Mask]:
    """Apply one family (``FAMILIES``); ValueError for an unknown one."""
    if family not in ATTACKS:
        raise ValueError(f"unknown tamper family {family!r}")
    out, mask = ATTACKS[family](rng, np.asarray(plane, np.float32), donor)
    return out.astype(np.float32), mask


# --- whole-image changes an archive or viewer makes (authentic) ------------------------------

RESAVES: Final[tuple[str, ...]] = ("bits8", "jpeg", "gamma", "resize", "unsharp")
"""Benign whole-image changes: 8-bit storage, JPEG at quality 80–95, a global gamma 0.8–1.25,
down to 50–80 % and back (bicubic), a viewer's mild unsharp mask."""


def resave(rng: Rng, plane: Plane, kind: str) -> Plane:
    """One benign whole-image change (``RESAVES``)."""
    if kind == "bits8":
        return np.asarray(np.round(plane * 255) / 255, np.float32)
    if kind == "jpeg":
        buffer = io.BytesIO()
        Image.fromarray(np.round(plane * 255).astype(np.uint8)).save(
            buffer, format="JPEG", quality=int(rng.integers(80, 96))
        )
        return np.asarray(np.asarray(Image.open(buffer), np.float32) / 255, np.float32)
    if kind == "gamma":
        return _clip(np.power(np.clip(plane, 0, 1), rng.uniform(0.8, 1.25)))
    if kind == "resize":
        rows, cols = plane.shape
        factor = float(rng.uniform(0.5, 0.8))
        small = _fit(plane, (max(int(rows * factor), 8), max(int(cols * factor), 8)))
        return _clip(_fit(small, (rows, cols)))
    if kind == "unsharp":
        image = Image.fromarray(np.round(plane * 255).astype(np.uint8))
        sharp = image.filter(ImageFilter.UnsharpMask(radius=1.5, percent=60, threshold=2))
        return np.asarray(np.asarray(sharp, np.float32) / 255, np.float32)
    raise ValueError(f"unknown benign change {kind!r}")
