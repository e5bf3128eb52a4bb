"""The images of a training run: base images per split, the balanced held-out sets, and the
training pool of benign and tampered pairs (numpy only, so measuring needs no torch).

Everything is drawn from the run's seed: the same seed and ``--phantoms`` give the same sets
wherever they are built, so the training run, the promotion gate and the benches judge models
on identical images.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np

from scanseal.detect.training import data, synth

PHANTOMS = 480
"""Training phantoms of a run (``--phantoms``); validation gets an eighth as many, test a third."""


@dataclass
class Pool:
    """Whole training planes (float16) with masks, region centres and families."""

    planes: np.ndarray[Any, Any]
    masks: np.ndarray[Any, Any]
    centres: np.ndarray[Any, Any]
    families: np.ndarray[Any, Any]


def base_images(
    seed: int, split: data.Split, phantoms: int, views: int = 0
) -> list[tuple[synth.Plane, str]]:
    """Real planes of ``split`` (``views`` more per real image: other frames and fields of
    view, see :func:`data.real_views`), then ``phantoms`` phantoms."""
    real = [(plane, modality) for plane, modality, _ in data.real_planes(split)]
    stream = ("train", "val", "test").index(split)
    if views:
        view_rng = np.random.default_rng([seed, 11, stream])
        real += [(plane, kind) for plane, kind, _ in data.real_views(split, view_rng, views)]
    rng = np.random.default_rng([seed, stream])
    made = data.phantom_planes(rng, split, phantoms)
    return real + [(plane, style) for plane, style, _ in made]


def held_out(
    seed: int, split: data.Split, phantoms: int = PHANTOMS
) -> tuple[list[synth.Sample], list[tuple[synth.Plane, str]]]:
    """A run's balanced validation or test set and the base images it was made from: the same
    samples for the same seed and ``phantoms`` (the run's ``--phantoms``) wherever it is built,
    so the gate, the benches and the run itself judge models on identical sets."""
    share, stream = {"val": (8, 2), "test": (3, 3)}[split]
    bases = base_images(seed, split, phantoms // share)
    return synth.balanced_set(np.random.default_rng([seed, stream]), bases), bases


def build_pool(seed: int, bases: list[tuple[synth.Plane, str]], size: int) -> Pool:
    """``size`` planes in pairs of one base image: row ``2p`` benignly changed, row ``2p + 1``
    tampered (families and benign changes in rotation), seeded per pair.

    Batches take both rows of a pair through the same window: two images with the same anatomy
    and opposite labels teach the model the manipulation rather than the content."""
    side = synth.SIZE
    pool = Pool(
        planes=np.empty((size, side, side), np.float16),
        masks=np.empty((size, side, side), np.bool_),
        centres=np.full((size, 2), -1, np.int32),
        families=np.empty(size, dtype=object),
    )
    real = [b for b in bases if not synth.is_phantom(b[1])]
    fake = [b for b in bases if synth.is_phantom(b[1])]
    for pair in range(size // 2):
        rng = np.random.default_rng([seed, 7, pair])
        group = real if (real and rng.random() < 0.5) else fake
        plane, modality = group[int(rng.integers(len(group)))]
        donor = bases[int(rng.integers(len(bases)))][0]
        _fill_pair(pool, pair, (seed, 7, pair), plane, modality, donor)
    return pool


def _fill_pair(
    pool: Pool,
    pair: int,
    key: tuple[int, ...],
    plane: synth.Plane,
    modality: str,
    donor: synth.Plane,
) -> None:
    """Write pair ``pair`` of the pool from one base image: its benign change and its tampered
    version (the kinds follow the pair's index, so every family and benign change keeps its
    share), seeded by ``key``."""
    families, changes = synth.FAMILIES, synth.BENIGN
    for member in (0, 1):
        index = 2 * pair + member
        if member:
            kind = families[pair % len(families)]
        else:  # every (family, benign change) combination once in each run of 7 × 7 pairs
            kind = changes[(pair // len(families)) % len(changes)]
        rng = np.random.default_rng([*key, member])
        sample = synth.make_sample(rng, plane, donor, modality, kind)
        pool.planes[index], pool.masks[index] = sample.plane, sample.mask
        pool.families[index] = kind
        pool.centres[index] = -1
        if sample.mask.any():
            ys, xs = np.nonzero(sample.mask)
            pool.centres[index] = int(ys.mean()), int(xs.mean())


class Refresher(Protocol):
    """Something that replaces pairs of a pool while a model trains on it."""

    def after_step(self, pool: Pool, step: int) -> None:
        """Called after each training step."""


@dataclass
class FreshPairs:
    """Replaces pairs of the pool with new ones while a model trains, ``per_step`` pairs per
    step on average, oldest first, so the pool turns over many times in a long run.

    A new pair is a new manipulation of a real training image (half of the time, as in the
    pool) or of a phantom generated for it, never seen before, so that a network cannot learn
    which of a few hundred phantoms are authentic; phantoms cost milliseconds to draw. (Over a
    full run this helped on unseen phantoms and hurt on real studies, docs/MODEL.md "Choosing
    the recipe"; it is off by default.) Phantoms drawn here are training images by
    construction: they come from their own random stream, which validation and test never
    use."""

    real: list[tuple[synth.Plane, str]]
    donors: list[tuple[synth.Plane, str]]
    seed: int
    per_step: float
    made: int = 0

    def after_step(self, pool: Pool, step: int) -> None:
        """Bring the pool up to ``per_step * (step + 1)`` new pairs."""
        pairs = len(pool.families) // 2
        while self.made < self.per_step * (step + 1):
            self._replace(pool, self.made % pairs)
            self.made += 1

    def _replace(self, pool: Pool, pair: int) -> None:
        key = (self.seed, 13, self.made)
        rng = np.random.default_rng(key)
        if self.real and rng.random() < 0.5:
            plane, modality = self.real[int(rng.integers(len(self.real)))]
        else:
            modality = synth.PHANTOM_STYLES[self.made % len(synth.PHANTOM_STYLES)]
            plane = synth.phantom(rng, modality)
        donor = self.donors[int(rng.integers(len(self.donors)))][0]
        _fill_pair(pool, pair, key, plane, modality, donor)


def fresh_pairs(
    seed: int, bases: list[tuple[synth.Plane, str]], per_step: float
) -> FreshPairs | None:
    """The :class:`FreshPairs` for training images ``bases``, or None when ``per_step`` is 0."""
    if per_step <= 0:
        return None
    real = [b for b in bases if not synth.is_phantom(b[1])]
    return FreshPairs(real, bases, seed, per_step)


def crop_window(pool: Pool, row: int, rng: np.random.Generator, size: int) -> tuple[int, int]:
    """A ``size`` window holding the tampered region's centre (anywhere for a benign plane).

    The centre stays at least 24 pixels from the window's edge, fewer in windows under 64."""
    limit = synth.SIZE - size
    if limit <= 0:
        return 0, 0
    cy, cx = pool.centres[row]
    if cy < 0:
        return int(rng.integers(limit + 1)), int(rng.integers(limit + 1))
    margin = max(0, min(24, size // 2 - 8))
    y = int(np.clip(cy - rng.integers(margin, size - margin), 0, limit))
    x = int(np.clip(cx - rng.integers(margin, size - margin), 0, limit))
    return y, x
