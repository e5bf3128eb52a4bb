"""Randomised tampering for training: many operators, region shapes and blendings, composed.

:mod:`scanseal.detect.training.synth` has seven fixed recipes; a network trained on them learns
those recipes' artefacts, and tampering made another way falls outside what it saw. Here one
tampered sample draws a region shape (blob, polygon, rounded box, brush stroke, several
blobs), one to three content operators (copy from the same image with an optional flip, turn or
scale; a donor patch, matched or not; local gain, offset or gamma; blur, box, median or sharpen
filters; added Gaussian, signal-dependent or multiplicative noise; inpainting by diffusion,
by the border mean or by a mirrored neighbourhood; a textured or smooth lesion), a blending
(hard, feathered, Gaussian-softened), an optional re-noising of the region, and an optional
benign change of the whole image afterwards. Authentic samples get one or two benign changes
drawn from a wider set than ``synth.BENIGN`` (JPEG 70-98, gamma, resize, unsharp mask, mild
blur, noise, 8-12-bit storage).

This module never imports :mod:`scanseal.detect.training.attacks` (the evaluation's own
tampering) and shares none of its code: the evaluation stays a held-out implementation.
numpy and Pillow only.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Final

import numpy as np
from PIL import Image, ImageDraw, ImageFilter

from scanseal.detect.training import synth
from scanseal.detect.training.synth import SIZE, Mask, Plane, Rng, Sample

KIND: Final = "composed"
"""The ``family`` of every tampered sample made here."""


# --- region shapes -------------------------------------------------------------------------------


def _centre(rng: Rng, plane: Plane, reach: int) -> tuple[int, int]:
    """A centre at least ``reach`` from the border, on the body when a few tries find it."""
    low, high = reach + 1, SIZE - reach - 1
    if high <= low:
        return SIZE // 2, SIZE // 2
    first = (int(rng.integers(low, high)), int(rng.integers(low, high)))
    for _ in range(10):
        cy, cx = int(rng.integers(low, high)), int(rng.integers(low, high))
        if plane[cy - 2 : cy + 3, cx - 2 : cx + 3].mean() > 0.05:
            return cy, cx
    return first


def _f32(array: object) -> Plane:
    return np.asarray(array, np.float32)


def _ellipse(box: tuple[float, float, float, float]) -> Callable[[ImageDraw.ImageDraw], None]:
    return lambda d: d.ellipse(box, fill=255)


def _draw(shape: Callable[[ImageDraw.ImageDraw], None]) -> Plane:
    image = Image.new("L", (SIZE, SIZE), 0)
    shape(ImageDraw.Draw(image))
    return _f32(np.asarray(image, np.float32) / 255)


def _polygon(rng: Rng, cy: int, cx: int, radius: float) -> Plane:
    corners = int(rng.integers(3, 10))
    angles = np.sort(rng.uniform(0, 2 * np.pi, corners))
    radii = radius * rng.uniform(0.5, 1.0, corners)
    points = [(cx + r * np.cos(a), cy + r * np.sin(a)) for a, r in zip(angles, radii, strict=True)]
    return _draw(lambda d: d.polygon(points, fill=255))


def _rounded_box(rng: Rng, cy: int, cx: int, radius: float) -> Plane:
    h, w = radius * rng.uniform(0.4, 1.0), radius * rng.uniform(0.4, 1.0)
    corner = int(min(h, w) * rng.uniform(0, 0.8))
    box = (cx - w, cy - h, cx + w, cy + h)
    return _draw(lambda d: d.rounded_rectangle(box, radius=corner, fill=255))


def _stroke(rng: Rng, cy: int, cx: int, radius: float) -> Plane:
    steps = int(rng.integers(2, 6))
    walk = np.cumsum(rng.normal(0, radius * 0.6, (steps, 2)), axis=0) + np.array([cx, cy])
    points = [(float(x), float(y)) for x, y in np.clip(walk, 4, SIZE - 5)]
    width = int(rng.uniform(3, max(4.0, radius * 0.6)))
    return _draw(lambda d: d.line([(cx, cy), *points], fill=255, width=width, joint="curve"))


def _blobs(rng: Rng, cy: int, cx: int, radius: float) -> Plane:
    out = np.zeros((SIZE, SIZE), np.float32)
    for _ in range(int(rng.integers(1, 4))):
        r = radius * rng.uniform(0.3, 0.8)
        y, x = cy + rng.normal(0, radius * 0.5), cx + rng.normal(0, radius * 0.5)
        box = (x - r, y - r * rng.uniform(0.6, 1.4), x + r, y + r * rng.uniform(0.6, 1.4))
        out = np.maximum(out, _draw(_ellipse(box)))
    return out


_SHAPES: Final = (_polygon, _rounded_box, _stroke, _blobs)


def region(rng: Rng, plane: Plane) -> tuple[Plane, tuple[int, int], int]:
    """An alpha map in [0, 1] (shape and edge drawn at random), its centre and reach."""
    radius = float(np.exp(rng.uniform(np.log(4), np.log(40))))
    reach = int(radius * 1.6) + 2
    cy, cx = _centre(rng, plane, min(reach, SIZE // 2 - 2))
    if rng.random() < 0.3:
        alpha, half, _ = synth._blob(rng, radius, rng.uniform(0.5, 4))
        alpha = synth._full_alpha(alpha, *_clamp(cy, cx, half), half)
    else:
        alpha = _SHAPES[int(rng.integers(len(_SHAPES)))](rng, cy, cx, radius)
    edge = rng.random()
    if edge < 0.3:  # hard edge
        alpha = (alpha > 0.5).astype(np.float32)
    elif edge < 0.85:  # feathered
        alpha = synth.gaussian_blur(alpha, float(rng.uniform(0.4, 3.0)))
    else:  # a wide, soft transition
        alpha = synth.gaussian_blur(alpha, float(rng.uniform(3.0, 7.0)))
        alpha = np.clip(alpha * 1.6, 0, 1)
    if float(alpha.max()) < 0.6:
        alpha = np.clip(alpha / max(float(alpha.max()), 1e-3), 0, 1)
    return alpha.astype(np.float32), (cy, cx), reach


def _clamp(cy: int, cx: int, half: int) -> tuple[int, int]:
    low, high = half, SIZE - half - 1
    return int(np.clip(cy, low, high)), int(np.clip(cx, low, high))


# --- content operators: each returns a whole edited plane to blend in through the region ----------


def _geometry(rng: Rng, plane: Plane) -> Plane:
    """The plane flipped, turned by quarter turns or rescaled about its centre (or as is)."""
    pick = rng.random()
    if pick < 0.4:
        return plane
    if pick < 0.7:
        out = np.rot90(plane, int(rng.integers(1, 4)))
        return np.ascontiguousarray(out[:, ::-1] if rng.random() < 0.5 else out)
    factor = float(rng.uniform(0.7, 1.4))
    side = max(8, int(SIZE * factor))
    method = Image.Resampling.BILINEAR if rng.random() < 0.5 else Image.Resampling.BICUBIC
    scaled = np.asarray(Image.fromarray(plane).resize((side, side), method), np.float32)
    return synth._fit(scaled, (SIZE, SIZE))


def _shifted(rng: Rng, source: Plane, centre: tuple[int, int], reach: int) -> Plane:
    """``source`` moved so that a random spot of it lands on ``centre``."""
    for _ in range(15):
        sy, sx = (int(v) for v in rng.integers(reach, SIZE - reach, 2))
        if abs(sy - centre[0]) + abs(sx - centre[1]) > reach:
            break
    return np.roll(source, (centre[0] - sy, centre[1] - sx), axis=(0, 1))


def op_copy(rng: Rng, plane: Plane, donor: Plane, centre: tuple[int, int], reach: int) -> Plane:
    """Content of the same image from elsewhere (copy-move), possibly flipped, turned, scaled."""
    moved = _shifted(rng, _geometry(rng, plane), centre, reach)
    if rng.random() < 0.3:
        moved = moved * rng.uniform(0.9, 1.1) + rng.uniform(-0.03, 0.03)
    return moved.astype(np.float32)


def op_donor(rng: Rng, plane: Plane, donor: Plane, centre: tuple[int, int], reach: int) -> Plane:
    """Content of another image (splice), its level matched to the target area or not."""
    patch = _shifted(rng, _geometry(rng, donor), centre, reach)
    if rng.random() < 0.7:
        y, x = centre
        window = (slice(max(0, y - reach), y + reach), slice(max(0, x - reach), x + reach))
        target, got = plane[window], patch[window]
        scale = (target.std() + 1e-3) / (got.std() + 1e-3) * rng.uniform(0.7, 1.3)
        patch = (patch - got.mean()) * scale + target.mean()
    return patch.astype(np.float32)


def op_level(rng: Rng, plane: Plane, donor: Plane, centre: tuple[int, int], reach: int) -> Plane:
    """Local gain, offset or gamma (brightening, darkening, contrast)."""
    pick = rng.random()
    strength = float(np.exp(rng.uniform(np.log(0.02), np.log(0.25))))
    if pick < 0.35:
        return _f32(plane + strength * rng.choice([-1.0, 1.0]))
    if pick < 0.7:
        mean = float(plane.mean())
        return _f32((plane - mean) * (1 + strength * rng.choice([-2.0, 2.0])) + mean)
    return _f32(np.clip(plane, 0, 1) ** float(np.exp(rng.uniform(-0.6, 0.6))))


def _box_blur(plane: Plane, radius: int) -> Plane:
    """Mean over a (2·radius + 1)² square, reflected borders."""
    width = 2 * radius + 1
    out = np.pad(plane.astype(np.float64), radius, mode="reflect")
    for axis in (0, 1):
        summed = np.cumsum(out, axis=axis)
        summed = np.insert(summed, 0, 0.0, axis=axis)
        out = (np.take(summed, range(width, summed.shape[axis]), axis=axis)
               - np.take(summed, range(summed.shape[axis] - width), axis=axis)) / width  # fmt: skip
    return out.astype(np.float32)


def op_filter(rng: Rng, plane: Plane, donor: Plane, centre: tuple[int, int], reach: int) -> Plane:
    """A local filter: Gaussian, box or median smoothing, or sharpening."""
    pick = rng.random()
    if pick < 0.35:
        return synth.gaussian_blur(plane, float(rng.uniform(0.6, 3.0)))
    if pick < 0.55:
        return _box_blur(plane, int(rng.integers(1, 4)))
    if pick < 0.75:
        size = int(rng.choice([3, 5]))
        image = Image.fromarray(plane.astype(np.float32))
        return np.asarray(image.filter(ImageFilter.MedianFilter(size)), np.float32)
    detail = plane - synth.gaussian_blur(plane, float(rng.uniform(0.7, 2.5)))
    return _f32(plane + float(rng.uniform(0.5, 3.0)) * detail)


def op_noise(rng: Rng, plane: Plane, donor: Plane, centre: tuple[int, int], reach: int) -> Plane:
    """Added noise: Gaussian, signal-dependent (quantum-like) or multiplicative (speckle)."""
    sigma = float(np.exp(rng.uniform(np.log(0.004), np.log(0.06))))
    noise = _f32(rng.standard_normal(plane.shape))
    if rng.random() < 0.3:
        noise = synth.gaussian_blur(noise, float(rng.uniform(0.5, 1.2))) * 2
    pick = rng.random()
    if pick < 0.45:
        return _f32(plane + sigma * noise)
    if pick < 0.75:
        return _f32(plane + sigma * 3 * np.sqrt(np.clip(plane, 0, 1)) * noise)
    return _f32(plane * (1 + sigma * 4 * noise))


def op_fill(rng: Rng, plane: Plane, donor: Plane, centre: tuple[int, int], reach: int) -> Plane:
    """Inpainting: heavy diffusion of the surroundings, a mirrored neighbourhood, or a smooth
    fill at the local level (removing what was there)."""
    pick = rng.random()
    if pick < 0.4:
        out = plane
        for sigma in (8.0, 4.0, 2.0):
            out = synth.gaussian_blur(out, sigma)
        return out
    if pick < 0.7:
        y, x = centre
        return np.ascontiguousarray(np.roll(plane[::-1] if rng.random() < 0.5 else plane[:, ::-1],
                                            (2 * y - SIZE + 1, 0) if rng.random() < 0.5
                                            else (0, 2 * x - SIZE + 1), axis=(0, 1)))  # fmt: skip
    y, x = centre
    level = float(plane[max(0, y - reach) : y + reach, max(0, x - reach) : x + reach].mean())
    return np.full(plane.shape, level, np.float32) + synth.gaussian_blur(plane - level, 6.0)


def op_lesion(rng: Rng, plane: Plane, donor: Plane, centre: tuple[int, int], reach: int) -> Plane:
    """A lesion: a smooth or textured bump or hollow (the region's alpha gives its outline)."""
    texture = synth._smooth_noise(rng, plane.shape, float(rng.uniform(1.5, 8)))
    contrast = float(np.exp(rng.uniform(np.log(0.03), np.log(0.4)))) * rng.choice([-1.0, 1.0])
    return _f32(plane + contrast * (1 + float(rng.uniform(0, 0.4)) * texture))


OPERATORS: Final[dict[str, Callable[[Rng, Plane, Plane, tuple[int, int], int], Plane]]] = {
    "copy": op_copy,
    "donor": op_donor,
    "level": op_level,
    "filter": op_filter,
    "noise": op_noise,
    "fill": op_fill,
    "lesion": op_lesion,
}
_WEIGHTS: Final = np.array([0.2, 0.15, 0.15, 0.13, 0.1, 0.14, 0.13])


# --- samples -------------------------------------------------------------------------------------


def tamper(rng: Rng, plane: Plane, donor: Plane) -> tuple[Plane, Mask, list[str]]:
    """One to three operators, each through its own region (the same one half of the time),
    each blended in, the region's noise put back at times; returns the plane, the truth mask
    and the operators used."""
    out = plane.astype(np.float32)
    truth = np.zeros(plane.shape, bool)
    used: list[str] = []
    alpha, centre, reach = region(rng, plane)
    for step in range(int(rng.choice([1, 1, 1, 2, 2, 3]))):
        if step and rng.random() < 0.5:
            alpha, centre, reach = region(rng, out)
        name = str(rng.choice(list(OPERATORS), p=_WEIGHTS / _WEIGHTS.sum()))
        edited = OPERATORS[name](rng, out, donor, centre, reach)
        if rng.random() < 0.3:
            noise = synth._noise_level(plane) * rng.standard_normal(plane.shape)
            edited = edited + _f32(noise)
        before, out = out, synth._clip(out * (1 - alpha) + edited * alpha)
        truth |= (alpha > 0.5) & (np.abs(out - before) > 2e-3)
        used.append(name)
    if truth.sum() < 12:
        truth = alpha > 0.5
    return out, truth, used


def _gamma(rng: Rng, plane: Plane) -> Plane:
    return np.asarray(np.clip(plane, 0, 1) ** float(np.exp(rng.uniform(-0.3, 0.3))), np.float32)


def _resize(rng: Rng, plane: Plane) -> Plane:
    side = int(SIZE * rng.uniform(0.45, 0.95))
    method = (Image.Resampling.BILINEAR, Image.Resampling.BICUBIC, Image.Resampling.LANCZOS)
    pick = method[int(rng.integers(3))]
    small = Image.fromarray(plane).resize((side, side), pick)
    return np.asarray(small.resize((SIZE, SIZE), pick), np.float32)


def _unsharp(rng: Rng, plane: Plane) -> Plane:
    detail = plane - synth.gaussian_blur(plane, float(rng.uniform(0.8, 3.0)))
    return _f32(plane + float(rng.uniform(0.2, 1.5)) * detail)


BENIGN: Final[dict[str, Callable[[Rng, Plane], Plane]]] = {
    "jpeg": lambda rng, p: synth.jpeg(p, int(rng.integers(70, 99))),
    "gamma": _gamma,
    "resize": _resize,
    "unsharp": _unsharp,
    "blur": lambda rng, p: synth.gaussian_blur(p, float(rng.uniform(0.3, 0.9))),
    "noise": lambda rng, p: p + float(rng.uniform(0.002, 0.02)) * rng.standard_normal(p.shape),
    "bits": lambda rng, p: synth.quantise(p, int(rng.choice([8, 10, 12]))),
    "jpeg2000": lambda rng, p: synth.jpeg2000(p, float(rng.uniform(5, 20))),
}


def benign(rng: Rng, plane: Plane, count: int) -> Plane:
    """``count`` whole-image changes drawn from :data:`BENIGN`, one after the other."""
    out = plane
    for name in rng.choice(list(BENIGN), size=count, replace=False):
        out = synth._clip(BENIGN[str(name)](rng, out))
    return out


def make_pair(rng: Rng, plane: Plane, donor: Plane, modality: str) -> tuple[Sample, Sample]:
    """An authentic and a tampered sample of the same base image.

    The authentic one is the plane as it is (a quarter of the time) or after one or two benign
    changes; the tampered one gets a benign change afterwards 40 % of the time. Both are stored
    at 8 bits a third of the time."""
    count = int(rng.choice([0, 1, 1, 2]))
    authentic = benign(rng, plane, count) if count else plane
    edited, mask, _ = tamper(rng, plane, donor)
    if rng.random() < 0.4:
        edited = benign(rng, edited, 1)
    pair = []
    for out, truth, tampered in (
        (authentic, np.zeros(plane.shape, bool), False),
        (edited, mask, True),
    ):
        if rng.random() < 1 / 3:
            out = synth.quantise(out, 8)
        kind = KIND if tampered else "authentic"
        pair.append(Sample(np.asarray(out, np.float32), truth, tampered, kind, modality))
    return pair[0], pair[1]
