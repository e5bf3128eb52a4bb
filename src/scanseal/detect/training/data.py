"""Where the detector's real images come from and how they are split by study.

The real frames are the DICOM files shipped with pydicom and pydicom-data, found on disk
(nothing is downloaded). The split is by study: a file's StudyInstanceUID, or the file itself
when it has none, is hashed with a fixed salt into train, validation or test, so no study ever
lands on both sides. Phantom "studies" are split by their index the same way.
"""

from __future__ import annotations

import hashlib
import importlib.util
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Final, Literal

import numpy as np
import pydicom

from scanseal.detect.training.synth import PHANTOM_STYLES, SIZE, Plane, Rng, phantom
from scanseal.errors import InvalidInput
from scanseal.ingest import preprocess, preprocess_views, read_metadata

Split = Literal["train", "val", "test"]
SPLIT_SALT: Final = "scanseal-detect-split-12"
"""Changing the salt changes every split; the committed model was measured with this one."""


@dataclass(frozen=True)
class RealImage:
    path: Path
    study: str
    modality: str


def split_of(study: str) -> Split:
    """Test for about 25% of studies, validation for about 15%, training for the rest."""
    bucket = hashlib.sha256(f"{SPLIT_SALT}:{study}".encode()).digest()[0] % 20
    if bucket < 5:
        return "test"
    return "val" if bucket < 8 else "train"


def pydicom_dirs() -> list[Path]:
    dirs = [Path(pydicom.__file__).parent / "data" / "test_files"]
    spec = importlib.util.find_spec("data_store")  # pydicom-data's import name
    if spec is not None and spec.origin is not None:
        dirs.append(Path(spec.origin).parent / "data")
    return dirs


def real_images() -> list[RealImage]:
    """Every shipped DICOM Part 10 file with pixels, deduplicated by content, in a fixed order."""
    seen: set[bytes] = set()
    found: list[RealImage] = []
    for root in pydicom_dirs():
        for path in sorted(p for p in root.rglob("*") if p.is_file()):
            described = _describe(path, seen)
            if described is not None:
                found.append(described)
    return found


def _describe(path: Path, seen: set[bytes]) -> RealImage | None:
    raw = path.read_bytes()
    digest = hashlib.sha256(raw).digest()
    if raw[128:132] != b"DICM" or digest in seen:
        return None
    seen.add(digest)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            ds = pydicom.dcmread(path, stop_before_pixels=True)
            study = str(ds.get("StudyInstanceUID", "") or f"file:{path.name}")
            modality = str(ds.get("Modality", "") or "none")
        except Exception:  # pydicom refuses it: not a candidate
            return None
    return RealImage(path, study, modality) if "Rows" in ds else None


def real_planes(split: Split) -> list[tuple[Plane, str, str]]:
    """(plane, modality, study) for every real image of ``split`` that ingest accepts."""
    planes: list[tuple[Plane, str, str]] = []
    for image in real_images():
        if split_of(image.study) != split:
            continue
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")  # pydicom's complaints about odd UIDs
                plane = preprocess(image.path)
        except InvalidInput:
            continue
        if float(plane.std()) > 0.02:  # blank frames teach nothing
            planes.append((plane, image.modality, image.study))
    return planes


def real_views(split: Split, rng: Rng, per_study: int) -> list[tuple[Plane, str, str]]:
    """``per_study`` more authentic planes from every real study of ``split``: a random image
    of the study, a random frame of it (multi-frame files have more than the middle one),
    cropped to a random field of view.

    Counting per study, not per file, matters: the shipped files hold one colour-bar picture in
    40 encodings and a few CT studies in one file each. A crop keeps 60-100% of each side. From
    a file of 224 pixels or more it keeps at least 224 native pixels: preprocessing shrinks such
    a file, and enlarging a view of it would smooth the noise the detector reads (smaller files
    are enlarged anyway). Each view is normalised as a file holding only that crop would be.
    Blank views and files ingest refuses are skipped."""
    studies: dict[str, list[RealImage]] = {}
    for image in real_images():
        if split_of(image.study) == split:
            studies.setdefault(image.study, []).append(image)
    views: list[tuple[Plane, str, str]] = []
    for images in studies.values():
        picks = np.bincount(rng.integers(len(images), size=per_study), minlength=len(images))
        for image, count in zip(images, picks, strict=True):
            try:
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore")
                    views += _views_of(image, rng, int(count))
            except InvalidInput:
                continue
    return views


def _views_of(image: RealImage, rng: Rng, count: int) -> list[tuple[Plane, str, str]]:
    if count == 0:
        return []
    meta = read_metadata(image.path)
    shortest = min(meta.rows, meta.columns)
    smallest = min(1.0, max(0.6, SIZE / shortest)) if shortest >= SIZE else 0.6
    by_frame: dict[int, list[tuple[float, float, float, float]]] = {}
    for _ in range(count):
        side = float(rng.uniform(smallest, 1.0))
        top, left = rng.uniform(0, 1 - side, size=2)
        by_frame.setdefault(int(rng.integers(meta.frames)), []).append(
            (float(top), float(left), side, side)
        )
    planes = []
    for frame, boxes in sorted(by_frame.items()):
        planes += preprocess_views(image.path, frame, boxes, SIZE)
    return [(p, image.modality, image.study) for p in planes if float(p.std()) > 0.02]


def phantom_planes(rng: Rng, split: Split, count: int) -> list[tuple[Plane, str, str]]:
    """``count`` phantoms whose study index falls in ``split``, styles in rotation."""
    planes: list[tuple[Plane, str, str]] = []
    index = 0
    while len(planes) < count:
        study = f"phantom:{index}"
        style = PHANTOM_STYLES[index % len(PHANTOM_STYLES)]
        if split_of(study) == split:
            planes.append((phantom(rng, style), style, study))
        index += 1
    return planes


def check_set(seed: int = 4242, images: int = 8) -> list[tuple[Plane, str]]:
    """The small held-out set the test suite re-measures the shipped model on.

    ``images`` real test-split frames (one per study first, so modalities vary) and as many
    test-split phantoms; :func:`scanseal.detect.training.synth.balanced_set` turns them into
    samples.
    """
    real = real_planes("test")
    by_study: dict[str, tuple[Plane, str]] = {}
    for plane, modality, study in real:
        by_study.setdefault(study, (plane, modality))
    chosen = list(by_study.values())[:images]
    rng = np.random.default_rng([seed, 1])
    made = phantom_planes(rng, "test", images)
    return chosen + [(plane, style) for plane, style, _ in made]
