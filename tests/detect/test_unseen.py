"""The unseen-source evaluation: its set, its black-box scoring and its figures (built here from
pydicom's files standing in for two sources, so these tests need no fetched cache)."""

from __future__ import annotations

import functools
from pathlib import Path

import numpy as np
import pytest
from pydicom.data import get_testdata_file

from scanseal.detect import default_detector
from scanseal.detect.training import attacks, sources, unseen, unseen_report
from scanseal.ingest import preprocess

pytestmark = pytest.mark.filterwarnings("ignore::UserWarning")


@functools.cache
def _bases() -> unseen.Bases:
    found = []
    for name, source, modality in (
        ("CT_small.dcm", "alpha", "CT"),
        ("MR_small.dcm", "alpha", "MR"),
        ("JPEG2000.dcm", "beta", "CT"),
    ):
        path = Path(str(get_testdata_file(name)))
        found.append((sources.SourceImage(path, source, f"g-{name}", modality), preprocess(path)))
    return found


def test_every_base_is_kept_resaved_and_tampered_once_per_family():
    cases = unseen.build(_bases(), seed=1)
    per_base = 1 + len(attacks.RESAVES) + len(attacks.FAMILIES)
    assert len(cases) == per_base * len(_bases())
    first = cases[:per_base]
    assert [c.kind for c in first] == ["original", *attacks.RESAVES, *attacks.FAMILIES]
    assert np.array_equal(first[0].plane, _bases()[0][1]), "the original is the screened plane"
    assert all(c.tampered == (c.kind in attacks.FAMILIES) for c in cases)
    assert all(c.mask.any() == c.tampered for c in cases)
    authentic_only = unseen.build(_bases(), seed=1, tampered=False)
    assert len(authentic_only) == (1 + len(attacks.RESAVES)) * len(_bases())


def test_the_set_repeats_under_its_seed_and_changes_with_it():
    first, again = unseen.build(_bases(), seed=3), unseen.build(_bases(), seed=3)
    other = unseen.build(_bases(), seed=4)
    assert all(np.array_equal(a.plane, b.plane) for a, b in zip(first, again, strict=True))
    assert any(not np.array_equal(a.plane, b.plane) for a, b in zip(first, other, strict=True))


def test_a_splice_takes_its_donor_from_another_source():
    rng = np.random.default_rng(0)
    bases = _bases()
    for _ in range(10):
        donor = unseen._donor(bases, 0, rng)
        assert np.array_equal(donor, bases[2][1]), "alpha's only other source is beta"


def test_scores_are_what_scanseal_screen_reports_for_the_file():
    cases = unseen.build(_bases(), seed=1)
    scores, maps = unseen.score(default_detector(), cases)
    assert len(scores) == len(maps) == len(cases)
    for index, (image, _) in enumerate(_bases()):
        original = index * (1 + len(attacks.RESAVES) + len(attacks.FAMILIES))
        screened = default_detector().screen(image.path)
        assert abs(float(scores[original]) - screened.score) < 1e-5


def test_figures_cover_every_source_family_and_modality_and_render():
    cases = unseen.build(_bases(), seed=1)
    scores, maps = unseen.score(default_detector(), cases)
    result = unseen.figures(cases, scores, maps, 0.5)
    assert set(result["sources"]) == {"alpha", "beta"}
    assert set(result["families"]) == set(attacks.FAMILIES)
    assert set(result["modalities"]) == {"CT", "MR"}
    authentic = np.array([not c.tampered for c in cases])
    expected = float(np.mean(scores[authentic] >= 0.5))
    assert result["overall"]["false_alarm_rate"] == pytest.approx(expected)
    assert result["families"]["splice"]["n"] == 3 + authentic.sum()
    result["run"] = {"model": "m", "threshold": 0.5, "seed": 1, "sources": ["alpha", "beta"],
                     "images": 3, "samples": len(cases)}  # fmt: skip
    text = unseen_report.tables(result)
    assert "| copy_move |" in text
    assert "| beta |" in text


def test_without_fetched_sources_the_run_names_the_make_target(tmp_path):
    with pytest.raises(sources.SourceMissing, match="make detect-data"):
        unseen.run(Path("unused"), 1, cache=tmp_path)
