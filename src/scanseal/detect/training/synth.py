"""Deterministic training and evaluation data: phantoms, tamper families, benign changes.

Everything here is numpy and Pillow only, so the test suite (no torch) can build the same kind
of evaluation set the model was measured on. Every function takes a ``numpy.random.Generator``;
the same seed gives the same images bit for bit.

Planes are float32 (224, 224) in [0, 1], exactly what :func:`scanseal.ingest.preprocess` gives,
so tampering happens in the detector's own input space. Each tamper returns the edited plane and
its ground-truth mask (True where pixels were manipulated).
"""

from __future__ import annotations

import io
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Final

import numpy as np
from PIL import Image

Plane = np.ndarray[Any, np.dtype[np.float32]]
Mask = np.ndarray[Any, np.dtype[np.bool_]]
Rng = np.random.Generator

SIZE: Final = 224
FAMILIES: Final[tuple[str, ...]] = (
    "copy_move",
    "splice",
    "lesion_inject",
    "lesion_remove",
    "intensity",
    "retouch",
    "resample",
)
"""Tamper families, each with a ground-truth mask."""

BENIGN: Final[tuple[str, ...]] = (
    "original",
    "reencode",
    "window",
    "noise",
    "rescale",
    "jpeg",
    "jpeg2000",
)
"""Negatives: the untouched plane and changes a PACS or viewer makes to the whole image."""

PHANTOM_STYLES: Final[tuple[str, ...]] = ("PH-CT", "PH-MR", "PH-XR", "PH-US")


def is_phantom(modality: str) -> bool:
    """Whether a base image's modality label is a phantom style (real files carry the DICOM
    Modality, or "none")."""
    return modality in PHANTOM_STYLES


@dataclass(frozen=True)
class Sample:
    """One labelled plane: ``tampered`` is the image-level label, ``mask`` the pixel truth."""

    plane: Plane
    mask: Mask
    tampered: bool
    family: str
    modality: str


# --- small numpy image tools -------------------------------------------------------------------


def gaussian_blur(plane: np.ndarray[Any, Any], sigma: float) -> Plane:
    """Separable Gaussian blur with reflected borders (numpy only)."""
    if sigma <= 0:
        return plane.astype(np.float32)
    radius = max(1, int(3 * sigma + 0.5))
    taps = np.exp(-0.5 * (np.arange(-radius, radius + 1) / sigma) ** 2)
    taps /= taps.sum()
    out = plane.astype(np.float32)
    for axis in (0, 1):
        pad = [(0, 0), (0, 0)]
        pad[axis] = (radius, radius)
        padded = np.pad(out, pad, mode="reflect")
        acc = np.zeros_like(out)
        length = out.shape[axis]
        for i, weight in enumerate(taps):
            acc += np.float32(weight) * np.take(padded, np.arange(i, i + length), axis=axis)
        out = acc
    return out


def _smooth_noise(rng: Rng, shape: tuple[int, int], scale: float) -> Plane:
    """Zero-mean, unit-std noise correlated over about ``scale`` pixels (a texture)."""
    rows, cols = shape
    small = (max(2, int(rows / scale)), max(2, int(cols / scale)))
    coarse = rng.standard_normal(small).astype(np.float32)
    field = np.asarray(
        Image.fromarray(coarse).resize((cols, rows), Image.Resampling.BICUBIC), dtype=np.float32
    )
    return np.asarray((field - field.mean()) / (field.std() + 1e-6), dtype=np.float32)


def _resize(plane: Plane, shape: tuple[int, int]) -> Plane:
    rows, cols = shape
    image = Image.fromarray(plane.astype(np.float32))
    return np.asarray(image.resize((cols, rows), Image.Resampling.BILINEAR), dtype=np.float32)


def _noise_level(plane: Plane) -> float:
    """Robust estimate of the pixel noise std from the Laplacian residual (MAD)."""
    residual = plane[1:-1, 1:-1] * 4 - plane[:-2, 1:-1] - plane[2:, 1:-1]
    residual = residual - plane[1:-1, :-2] - plane[1:-1, 2:]
    return float(np.median(np.abs(residual)) / 0.6745 / np.sqrt(20.0))


def _clip(plane: np.ndarray[Any, Any]) -> Plane:
    return np.asarray(np.clip(plane, 0.0, 1.0), dtype=np.float32)


# --- phantoms ----------------------------------------------------------------------------------


def _ellipse(shape: tuple[int, int], cy: float, cx: float, ry: float, rx: float) -> Plane:
    yy, xx = np.mgrid[0 : shape[0], 0 : shape[1]].astype(np.float32)
    return np.asarray(((yy - cy) / ry) ** 2 + ((xx - cx) / rx) ** 2, dtype=np.float32)


def phantom(rng: Rng, style: str) -> Plane:
    """A synthetic body section in the style of CT, MR, radiography or ultrasound."""
    shape = (SIZE, SIZE)
    body = _ellipse(
        shape, 112 + rng.uniform(-8, 8), 112, rng.uniform(70, 100), rng.uniform(80, 105)
    )
    inside = (body < 1).astype(np.float32)
    tissue = 0.45 + 0.06 * _smooth_noise(rng, shape, rng.uniform(6, 20))
    plane = inside * tissue
    for _ in range(int(rng.integers(3, 8))):  # organs and lungs
        organ = _ellipse(
            shape,
            rng.uniform(50, 174),
            rng.uniform(50, 174),
            rng.uniform(8, 35),
            rng.uniform(8, 35),
        )
        level = rng.uniform(0.05, 0.9)
        plane = np.where((organ < 1) & (body < 0.9), level + 0.04 * tissue, plane)
    ring = ((body < 1) & (body > rng.uniform(0.8, 0.9))).astype(np.float32)
    plane = np.maximum(plane, ring * rng.uniform(0.6, 1.0))
    plane = gaussian_blur(plane, rng.uniform(0.6, 1.5))
    return _STYLES[style](rng, _clip(plane))


def _style_ct(rng: Rng, plane: Plane) -> Plane:
    return _clip(plane + rng.uniform(0.004, 0.02) * rng.standard_normal(plane.shape))


def _style_mr(rng: Rng, plane: Plane) -> Plane:
    bias = 1 + 0.2 * _smooth_noise(rng, plane.shape, 80)
    real = plane * bias + rng.uniform(0.005, 0.03) * rng.standard_normal(plane.shape)
    imag = rng.uniform(0.005, 0.03) * rng.standard_normal(plane.shape)
    return _clip(np.hypot(real, imag))  # Rician magnitude noise


def _style_xr(rng: Rng, plane: Plane) -> Plane:
    yy = np.linspace(0, 1, SIZE, dtype=np.float32)[:, None]
    ribs = 0.08 * (np.sin(yy * rng.uniform(20, 40) + rng.uniform(0, 6)) > 0.6)
    projected = gaussian_blur(plane, 2.5) + ribs + 0.1 * yy
    return _clip(projected + rng.uniform(0.003, 0.012) * rng.standard_normal(plane.shape))


def _style_us(rng: Rng, plane: Plane) -> Plane:
    yy, xx = np.mgrid[0:SIZE, 0:SIZE].astype(np.float32)
    angle = np.arctan2(xx - 112, yy + 20)
    sector = (np.abs(angle) < rng.uniform(0.5, 0.7)).astype(np.float32)
    speckle = np.asarray(rng.rayleigh(0.8, plane.shape), dtype=np.float32)
    return _clip(gaussian_blur(plane * speckle, 0.7) * sector)


_STYLES: Final[dict[str, Callable[[Rng, Plane], Plane]]] = {
    "PH-CT": _style_ct,
    "PH-MR": _style_mr,
    "PH-XR": _style_xr,
    "PH-US": _style_us,
}


# --- regions -----------------------------------------------------------------------------------


def _blob(rng: Rng, radius: float, feather: float) -> tuple[Plane, int, int]:
    """A soft irregular blob (alpha in [0, 1]) centred in a square of side ~2.6 * radius."""
    half = int(radius * 1.3) + 2
    yy, xx = np.mgrid[-half : half + 1, -half : half + 1].astype(np.float32)
    angle = np.arctan2(yy, xx)
    wobble = 1 + sum(
        rng.uniform(0, 0.15) * np.cos(k * angle + rng.uniform(0, 6.3)) for k in (2, 3, 5)
    )
    aspect = rng.uniform(0.7, 1.3)
    distance = np.hypot(yy * aspect, xx / aspect) / (radius * wobble)
    alpha = np.clip((1 - distance) * radius / max(feather, 0.5) + 0.5, 0, 1)
    return alpha.astype(np.float32), half, half


def _place(rng: Rng, plane: Plane, half: int) -> tuple[int, int]:
    """A centre inside the image, preferring the body (not the empty background)."""
    low, high = half + 1, SIZE - half - 2
    best = (int(rng.integers(low, high)), int(rng.integers(low, high)))
    for _ in range(12):
        cy, cx = int(rng.integers(low, high)), int(rng.integers(low, high))
        if plane[cy - 2 : cy + 3, cx - 2 : cx + 3].mean() > 0.08:
            return cy, cx
    return best


def _full_alpha(alpha: Plane, cy: int, cx: int, half: int) -> Plane:
    full = np.zeros((SIZE, SIZE), np.float32)
    full[cy - half : cy + half + 1, cx - half : cx + half + 1] = alpha
    return full


def _region(rng: Rng, plane: Plane, small: bool = False) -> tuple[Plane, int, int, int]:
    radius = rng.uniform(6, 14) if small else rng.uniform(8, 30)
    alpha, half, _ = _blob(rng, radius, rng.uniform(0.5, 4))
    cy, cx = _place(rng, plane, half)
    return _full_alpha(alpha, cy, cx, half), cy, cx, half


def _blend(plane: Plane, other: Plane, alpha: Plane) -> Plane:
    return _clip(plane * (1 - alpha) + other * alpha)


def _changed(alpha: Plane, before: Plane, after: Plane) -> Mask:
    """Ground truth: inside the blended region and visibly different from the original."""
    mask: Mask = (alpha > 0.5) & (np.abs(after - before) > 1e-3)
    if mask.sum() < 12:  # a flat area copied onto a flat area: the region itself is the truth
        mask = alpha > 0.5
    return mask


# --- tamper families ---------------------------------------------------------------------------


def copy_move(rng: Rng, plane: Plane, _donor: Plane) -> tuple[Plane, Mask]:
    """Copy a region of the same image elsewhere (hides or duplicates a structure)."""
    alpha, cy, cx, half = _region(rng, plane)
    for _ in range(20):
        sy = int(rng.integers(half + 1, SIZE - half - 2))
        sx = int(rng.integers(half + 1, SIZE - half - 2))
        if abs(sy - cy) + abs(sx - cx) > 2 * half:
            break
    shifted = np.roll(plane, (cy - sy, cx - sx), axis=(0, 1))
    out = _blend(plane, shifted, alpha)
    return out, _changed(alpha, plane, out)


def splice(rng: Rng, plane: Plane, donor: Plane) -> tuple[Plane, Mask]:
    """Paste a region from another image, its intensities matched to the target area."""
    alpha, cy, cx, half = _region(rng, plane)
    sy = int(rng.integers(half + 1, SIZE - half - 2))
    sx = int(rng.integers(half + 1, SIZE - half - 2))
    patch = np.roll(donor, (cy - sy, cx - sx), axis=(0, 1))
    inside = alpha > 0.5
    target_mean, target_std = plane[inside].mean(), plane[inside].std() + 1e-3
    patch = (patch - patch[inside].mean()) / (patch[inside].std() + 1e-3)
    patch = patch * target_std * rng.uniform(0.7, 1.5) + target_mean
    out = _blend(plane, patch.astype(np.float32), alpha)
    return out, _changed(alpha, plane, out)


def lesion_inject(rng: Rng, plane: Plane, _donor: Plane) -> tuple[Plane, Mask]:
    """Add a synthetic nodule or mass: textured, noise-matched, with a blended edge."""
    alpha, _cy, _cx, _half = _region(rng, plane, small=rng.random() < 0.6)
    texture = 1 + 0.25 * _smooth_noise(rng, (SIZE, SIZE), rng.uniform(2, 5))
    contrast = rng.uniform(0.08, 0.35) * (1 if rng.random() < 0.8 else -1)
    profile = gaussian_blur(alpha, rng.uniform(0.5, 2.0))
    noise = _noise_level(plane) * np.asarray(rng.standard_normal(plane.shape), np.float32)
    out = _clip(plane + profile * (contrast * texture + noise))
    return out, _changed(alpha, plane, out)


def lesion_remove(rng: Rng, plane: Plane, _donor: Plane) -> tuple[Plane, Mask]:
    """Inpaint a region from its surroundings (harmonic fill) and re-add matching noise."""
    alpha, cy, cx, half = _region(rng, plane, small=rng.random() < 0.5)
    pad = half + 4
    y0, y1, x0, x1 = (
        max(cy - pad, 0),
        min(cy + pad + 1, SIZE),
        max(cx - pad, 0),
        min(cx + pad + 1, SIZE),
    )
    crop, hole = plane[y0:y1, x0:x1].copy(), alpha[y0:y1, x0:x1] > 0.05
    fill = crop.copy()
    fill[hole] = crop[~hole].mean()
    for _ in range(60):  # Jacobi iterations of the Laplace equation inside the hole
        avg = (
            np.roll(fill, 1, 0) + np.roll(fill, -1, 0) + np.roll(fill, 1, 1) + np.roll(fill, -1, 1)
        ) / 4
        fill[hole] = avg[hole]
    if rng.random() < 0.6:
        fill[hole] += _noise_level(plane) * rng.standard_normal(int(hole.sum())).astype(np.float32)
    filled = plane.copy()
    filled[y0:y1, x0:x1] = fill
    out = _blend(plane, filled, alpha)
    return out, _changed(alpha, plane, out)


def intensity(rng: Rng, plane: Plane, _donor: Plane) -> tuple[Plane, Mask]:
    """Change brightness and contrast inside a region only."""
    alpha, *_ = _region(rng, plane)
    inside = alpha > 0.5
    mean = plane[inside].mean()
    gain = rng.uniform(0.6, 0.85) if rng.random() < 0.5 else rng.uniform(1.2, 1.6)
    offset = rng.uniform(0.04, 0.15) * rng.choice([-1.0, 1.0])
    edited = (plane - mean) * gain + mean + offset
    out = _blend(plane, edited.astype(np.float32), alpha)
    return out, _changed(alpha, plane, out)


def retouch(rng: Rng, plane: Plane, _donor: Plane) -> tuple[Plane, Mask]:
    """Local noise added, or local blur (smoothing a finding away), or local sharpening."""
    alpha, *_ = _region(rng, plane)
    kind = rng.integers(3)
    if kind == 0:
        edited = plane + rng.uniform(0.02, 0.06) * rng.standard_normal(plane.shape)
    elif kind == 1:
        edited = gaussian_blur(plane, rng.uniform(1.0, 2.5))
    else:
        edited = plane + rng.uniform(1.0, 2.5) * (plane - gaussian_blur(plane, 1.5))
    out = _blend(plane, edited.astype(np.float32), alpha)
    return out, _changed(alpha, plane, out)


def resample(rng: Rng, plane: Plane, _donor: Plane) -> tuple[Plane, Mask]:
    """Rotate or rescale a region in place (interpolation traces, moved anatomy)."""
    alpha, cy, cx, half = _region(rng, plane)
    pad = 2 * half
    y0, y1, x0, x1 = max(cy - pad, 0), min(cy + pad, SIZE), max(cx - pad, 0), min(cx + pad, SIZE)
    crop = Image.fromarray(plane[y0:y1, x0:x1])
    if rng.random() < 0.5:
        angle = rng.uniform(8, 90) * rng.choice([-1.0, 1.0])
        moved = np.asarray(crop.rotate(angle, Image.Resampling.BILINEAR), np.float32)
    else:
        factor = rng.uniform(1.2, 1.6) if rng.random() < 0.5 else rng.uniform(0.65, 0.85)
        w, h = crop.size
        scaled = crop.resize(
            (max(2, int(w * factor)), max(2, int(h * factor))), Image.Resampling.BILINEAR
        )
        moved = _fit(np.asarray(scaled, np.float32), (h, w))
    edited = plane.copy()
    edited[y0:y1, x0:x1] = np.where(moved > 0, moved, plane[y0:y1, x0:x1])
    out = _blend(plane, edited, alpha)
    return out, _changed(alpha, plane, out)


def _fit(array: Plane, shape: tuple[int, int]) -> Plane:
    """Centre-crop or reflect-pad ``array`` to ``shape``."""
    rows, cols = shape
    dy, dx = array.shape[0] - rows, array.shape[1] - cols
    if dy >= 0 and dx >= 0:
        return array[dy // 2 : dy // 2 + rows, dx // 2 : dx // 2 + cols]
    py, px = max(-dy, 0), max(-dx, 0)
    padded = np.pad(array, ((py // 2, py - py // 2), (px // 2, px - px // 2)), mode="reflect")
    return _fit(padded, shape)


TAMPERS: Final[dict[str, Callable[[Rng, Plane, Plane], tuple[Plane, Mask]]]] = {
    "copy_move": copy_move,
    "splice": splice,
    "lesion_inject": lesion_inject,
    "lesion_remove": lesion_remove,
    "intensity": intensity,
    "retouch": retouch,
    "resample": resample,
}


# --- benign, whole-image changes ---------------------------------------------------------------


def quantise(plane: Plane, bits: int = 8) -> Plane:
    """Store at ``bits`` per pixel and read back (what a PNG or DICOM re-encode does)."""
    top = float((1 << bits) - 1)
    return (np.round(plane * top) / top).astype(np.float32)


def jpeg(plane: Plane, quality: int) -> Plane:
    """Round-trip through 8-bit baseline JPEG at ``quality``."""
    buffer = io.BytesIO()
    Image.fromarray((np.clip(plane, 0, 1) * 255 + 0.5).astype(np.uint8)).save(
        buffer, format="JPEG", quality=quality
    )
    buffer.seek(0)
    return (np.asarray(Image.open(buffer), dtype=np.float32) / 255).astype(np.float32)


def jpeg2000(plane: Plane, ratio: float) -> Plane:
    """Round-trip through lossy JPEG 2000 (the irreversible 9/7 wavelet) at 16 bits, ``ratio``
    times smaller than the raw plane: DICOM's lossy JPEG 2000 transfer syntax, which archives
    and teleradiology links use. Its artefacts differ from JPEG's: no blocks, but fine texture
    and noise smoothed away unevenly, which a detector of local retouching must not flag."""
    buffer = io.BytesIO()
    Image.fromarray((np.clip(plane, 0, 1) * 65535 + 0.5).astype(np.uint16)).save(
        buffer, format="JPEG2000", quality_mode="rates", quality_layers=[ratio], irreversible=True
    )
    buffer.seek(0)
    return (np.asarray(Image.open(buffer), dtype=np.float32) / 65535).astype(np.float32)


def benign(rng: Rng, plane: Plane, kind: str) -> Plane:
    """Apply one whole-image change that must not count as tampering."""
    if kind == "original":
        return plane
    if kind == "reencode":
        return quantise(plane, int(rng.choice([8, 12, 16])))
    if kind == "window":
        low, high = rng.uniform(0, 0.1), rng.uniform(0.85, 1.0)
        return _clip(np.clip((plane - low) / (high - low), 0, 1) ** rng.uniform(0.75, 1.35))
    if kind == "noise":
        return _clip(plane + rng.uniform(0.003, 0.015) * rng.standard_normal(plane.shape))
    if kind == "rescale":
        side = int(SIZE * rng.uniform(0.6, 0.9))
        return _clip(_resize(_resize(plane, (side, side)), (SIZE, SIZE)))
    if kind == "jpeg":
        return jpeg(plane, int(rng.integers(88, 98)))
    if kind == "jpeg2000":
        return _clip(jpeg2000(plane, float(rng.uniform(6, 16))))
    raise ValueError(f"unknown benign change {kind!r}")


# --- samples -----------------------------------------------------------------------------------


def make_sample(
    rng: Rng, plane: Plane, donor: Plane, modality: str, kind: str, *, resave: float = 0.25
) -> Sample:
    """Tamper (``kind`` in FAMILIES) or benignly change (``kind`` in BENIGN) ``plane``.

    A tampered image is re-saved with a benign change with probability ``resave``, as an
    attacker's output would be; every sample is finally stored at 8 bits half of the time.
    """
    if kind in TAMPERS:
        out, mask = TAMPERS[kind](rng, plane, donor)
        if rng.random() < resave:
            out = benign(rng, out, str(rng.choice(BENIGN[1:])))
        tampered = True
    else:
        out, mask, tampered = benign(rng, plane, kind), np.zeros(plane.shape, bool), False
    if rng.random() < 0.5:
        out = quantise(out, 8)
    return Sample(out.astype(np.float32), mask, tampered, kind, modality)


def balanced_set(
    rng: Rng, bases: list[tuple[Plane, str]], families: tuple[str, ...] = FAMILIES
) -> list[Sample]:
    """Every base image once per tamper family and once per benign change."""
    samples = []
    for index, (plane, modality) in enumerate(bases):
        donor = bases[(index + 1) % len(bases)][0]
        for kind in (*families, *BENIGN):
            samples.append(make_sample(rng, plane, donor, modality, kind))
    return samples
