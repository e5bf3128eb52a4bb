"""Hand-built evidence fused with the network, measured on the unseen sources.

    python bench/detect_fusion.py --method copymove|noise [--seed 20261203] [--out FILE]

Two directions of issue 18's point 3, measured without training.

``copymove``, an explicit copy-move search: every 8×8 block (stride 1)
of the half-resolution band-pass residual (the 2×2-mean plane minus its 5×5 mean, so a
Poisson-cloned copy, whose offset is smooth, matches too), described by features invariant to
the square's eight symmetries (mean and spread of the residual on six rings around the block's
centre) and sorted by a random projection of them; each block is compared with its next six in
that order, and a pair at least 8 half-resolution pixels apart whose features agree within 8 %
is checked on the residual blocks under all eight symmetries (error under 15 % of their
energy). A rigid copy maps its source to its target by one symmetry S and one shift t, so each
checked pair votes for (S, a − S·b); the evidence is the largest vote. Flat blocks (residual
spread under half the noise level) are left out.

``noise``, a region against the rest of its own image: the noise level (median absolute
Laplacian residual) of each 16×16 tile on the body (tile mean over 0.05), as a log ratio to the
image's median tile; the evidence is the largest absolute log ratio. Blurring, added noise and
a splice from a source with other noise move a tile away from its image.

Fusion: each score is turned into its false-alarm rate among authentic samples of the *other*
unseen sources (leave-one-source-out, so no source's own images set its scale), and the fused
score is one minus the smaller of the two rates, doubled (a Bonferroni bound). Its threshold is
chosen on the other sources' authentic fused scores for 1 % false alarms, as the shipped
threshold is, and measured on the held-out source. The script prints the network alone, the
search alone and the fusion, with milliseconds per image of the search on one core.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Any, Final

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

from scanseal.detect import default_detector  # noqa: E402
from scanseal.detect.training import attacks, falsealarm, metrics, unseen  # noqa: E402

BLOCK: Final = 8
STRIDE: Final = 1
NEIGHBOURS: Final = 6
MIN_SHIFT: Final = 8
"""Half-resolution pixels (16 at the plane's)."""
_yy, _xx = np.mgrid[:BLOCK, :BLOCK]
_RING = np.minimum(
    (np.hypot(_yy - (BLOCK - 1) / 2, _xx - (BLOCK - 1) / 2) / 0.9).astype(int), 5
).ravel()
_RINGS = (np.eye(6)[_RING] / np.bincount(_RING, minlength=6)).astype(np.float32)
"""(64, 6): the mean over each ring of a flattened block."""


def _symmetry(turns: int, mirror: bool) -> Any:
    def apply(blocks: np.ndarray[Any, Any]) -> np.ndarray[Any, Any]:
        turned = np.rot90(blocks, turns, axes=(-2, -1))
        return turned[..., ::-1] if mirror else turned

    return apply


_SYMMETRIES = [_symmetry(k, f) for k in range(4) for f in (False, True)]


def _matrix(symmetry: Any) -> np.ndarray[Any, Any]:
    """The 2×2 map of offsets from a block's centre that ``symmetry`` applies to its pixels."""
    columns = []
    for offset in ((1, 0), (0, 1)):
        probe = np.zeros((1, 5, 5))
        probe[0, 2 - offset[0], 2 - offset[1]] = 1  # the pixel that lands at +offset ...
        moved = np.argwhere(symmetry(probe)[0])[0] - 2
        columns.append(-moved)  # ... came from there; pixels move by the inverse
    return np.linalg.inv(np.array(columns, float).T)


_MATRICES = [_matrix(s) for s in _SYMMETRIES]


def _blocks(plane: np.ndarray[Any, Any]) -> tuple[np.ndarray[Any, Any], np.ndarray[Any, Any]]:
    """Every 8×8 block of the half-resolution band-pass residual (stride 1 there, so any
    shift of a copy lands within half a pixel of a block of its source)."""
    rows, cols = (plane.shape[0] // 2) * 2, (plane.shape[1] // 2) * 2
    half = plane[:rows, :cols].reshape(rows // 2, 2, cols // 2, 2).mean(axis=(1, 3))
    residual = half - attacks.box_mean(half, 2)
    windows = np.lib.stride_tricks.sliding_window_view(residual, (BLOCK, BLOCK))
    windows = windows[::STRIDE, ::STRIDE]
    rows, cols = windows.shape[:2]
    where = np.stack(list(np.mgrid[:rows, :cols]), -1).reshape(-1, 2) * STRIDE
    return windows.reshape(-1, BLOCK, BLOCK), where


def evidence(plane: np.ndarray[Any, Any], seed: int = 0) -> float:
    """Distinct 4×4 cells covered by block pairs that are copies of each other."""
    blocks, where = _blocks(np.asarray(plane, np.float32))
    flat = blocks.reshape(len(blocks), -1)
    noise = max(attacks.noise_sigma(plane) / 2, 1e-3)  # a 2×2 mean halves white noise
    spread = flat.std(axis=1)
    keep = spread > max(0.5 * noise, 2e-3)  # not flat: an empty background matches itself
    if keep.sum() < 2:
        return 0.0
    flat, blocks, where = flat[keep], blocks[keep], where[keep]
    means = flat @ _RINGS
    spreads = np.sqrt(np.maximum((flat**2) @ _RINGS - means**2, 0))
    features = np.concatenate([means, spreads], axis=1) / noise
    order = np.argsort(features @ np.random.default_rng(seed).standard_normal(features.shape[1]))
    votes: dict[tuple[int, int, int], int] = {}
    centres = where + (BLOCK - 1) / 2
    for step in range(1, NEIGHBOURS + 1):
        a, b = order[:-step], order[step:]
        size = np.linalg.norm(features[a], axis=1) + np.linalg.norm(features[b], axis=1)
        close = np.linalg.norm(features[a] - features[b], axis=1) < 0.08 * size
        far = np.abs(where[a] - where[b]).max(axis=1) >= MIN_SHIFT
        pairs = np.nonzero(close & far)[0]
        if len(pairs) == 0:
            continue
        ia, ib = a[pairs], b[pairs]
        errors = np.stack(
            [np.mean((blocks[ia] - s(blocks[ib])) ** 2, axis=(1, 2)) for s in _SYMMETRIES]
        )
        which = np.argmin(errors, axis=0)
        best = errors[which, np.arange(len(which))]
        confirmed = np.nonzero(best < 0.15 * (spread[ia] ** 2 + spread[ib] ** 2))[0]
        for pair in confirmed:  # a rigid copy: target = S·source + t, one t for the region
            sym = int(which[pair])
            shift = centres[ia[pair]] - _MATRICES[sym] @ centres[ib[pair]]
            key = (sym, round(float(shift[0])), round(float(shift[1])))
            votes[key] = votes.get(key, 0) + 1
    return float(max(votes.values(), default=0))


def noise_evidence(plane: np.ndarray[Any, Any]) -> float:
    """The largest |log| ratio of a body tile's noise level to the image's median tile's."""
    p = np.asarray(plane, np.float32)
    residual = np.abs(4 * p[1:-1, 1:-1] - p[:-2, 1:-1] - p[2:, 1:-1] - p[1:-1, :-2] - p[1:-1, 2:])
    side = 16
    rows, cols = (residual.shape[0] // side) * side, (residual.shape[1] // side) * side
    tiles = residual[:rows, :cols].reshape(rows // side, side, cols // side, side)
    level = np.median(tiles.transpose(0, 2, 1, 3).reshape(-1, side * side), axis=1)
    body = p[1 : rows + 1, 1 : cols + 1].reshape(rows // side, side, cols // side, side)
    keep = body.mean(axis=(1, 3)).ravel() > 0.05
    level = level[keep]
    if len(level) < 4 or np.median(level) <= 0:
        return 0.0
    return float(np.max(np.abs(np.log((level + 1e-4) / (np.median(level) + 1e-4)))))


METHODS = {"copymove": evidence, "noise": noise_evidence}


def _rates(reference: np.ndarray[Any, Any], values: np.ndarray[Any, Any]) -> np.ndarray[Any, Any]:
    ordered = np.sort(reference)
    return (len(ordered) - np.searchsorted(ordered, values, side="left") + 1) / (len(ordered) + 1)


def fuse_held_out(
    net: np.ndarray[Any, Any], search: np.ndarray[Any, Any], cases: list[unseen.Case]
) -> tuple[np.ndarray[Any, Any], np.ndarray[Any, Any], dict[str, float]]:
    """Fused scores of every case from the other sources' authentic samples, and the per-source
    threshold chosen on the others' authentic fused scores; the held-out false alarms."""
    origin = np.array([c.source for c in cases])
    authentic = np.array([not c.tampered for c in cases])
    kinds = [c.kind for c in cases]
    fused = np.zeros(len(cases))
    flagged = np.zeros(len(cases), bool)
    rates: dict[str, float] = {}
    for source in sorted(set(origin)):
        mine, ref = origin == source, (origin != source) & authentic
        fused[mine] = 1 - np.minimum(
            1, 2 * np.minimum(_rates(net[ref], net[mine]), _rates(search[ref], search[mine]))
        )
        ref_fused = 1 - np.minimum(
            1, 2 * np.minimum(_rates(net[ref], net[ref]), _rates(search[ref], search[ref]))
        )
        threshold = falsealarm.choose(ref_fused, [k for k, r in zip(kinds, ref, strict=True) if r])
        flagged[mine] = fused[mine] >= threshold
        rates[source] = float(np.mean(flagged[mine & authentic]))
    return fused, flagged, rates


def _summary(
    labels: np.ndarray[Any, Any], scores: np.ndarray[Any, Any], cases: list[unseen.Case]
) -> dict[str, Any]:
    copy = np.array([c.kind == "copy_move" for c in cases]) | ~labels
    kinds = np.array([c.kind for c in cases])
    family_auc = {
        f: metrics.auc(labels[(kinds == f) | ~labels], scores[(kinds == f) | ~labels])
        for f in attacks.FAMILIES
    }
    return {
        "family_auc": family_auc,
        "auc": metrics.auc(labels, scores),
        "det_1pct": metrics.detection_at_false_alarm(labels, scores),
        "copy_move_auc": metrics.auc(labels[copy], scores[copy]),
        "copy_move_det_1pct": metrics.detection_at_false_alarm(labels[copy], scores[copy]),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--method", choices=sorted(METHODS), default="copymove")
    parser.add_argument("--seed", type=int, default=unseen.SEED)
    parser.add_argument("--out", type=Path)
    args = parser.parse_args()
    out = args.out or ROOT / f"bench/out/detect-fusion-{args.method}.json"
    cases = unseen.build(unseen.base_planes(), args.seed)
    net, _ = unseen.score(default_detector(), cases)
    started = time.process_time()
    search = np.array([METHODS[args.method](c.plane) for c in cases])
    ms = (time.process_time() - started) / len(cases) * 1000
    labels = np.array([c.tampered for c in cases])
    fused, flagged, held_out_fa = fuse_held_out(net, search, cases)
    copy = np.array([c.kind == "copy_move" for c in cases])
    result = {
        "method": args.method,
        "seed": args.seed,
        "samples": len(cases),
        "search_ms_per_image_cpu": round(ms, 2),
        "network": _summary(labels, net, cases),
        "search": _summary(labels, search, cases),
        "fused": _summary(labels, fused, cases),
        "fused_held_out": {
            "false_alarms_pooled": float(np.mean(flagged[~labels])),
            "false_alarms_per_source": held_out_fa,
            "detection": float(np.mean(flagged[labels])),
            "copy_move_recall": float(np.mean(flagged[copy])),
        },
        "network_shipped": {
            "false_alarms": float(np.mean(net[~labels] >= default_detector().threshold)),
            "detection": float(np.mean(net[labels] >= default_detector().threshold)),
            "copy_move_recall": float(np.mean(net[copy] >= default_detector().threshold)),
        },
    }
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=1) + "\n", encoding="utf-8")
    print(json.dumps(result, indent=1))


if __name__ == "__main__":
    main()
