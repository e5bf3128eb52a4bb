"""The recipient's catalogue on its own: what it does with an unreadable record, and where a
study's files go (never outside the directory, whatever UIDs a sender wrote)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from scanseal.errors import GatewayUnavailable, IntegrityError
from scanseal.transfer.catalogue import Catalogue, Described, is_study_uid, study_path


def _described(record: str, study: str = "1.2.3", series: str | None = "1.2.3.4",
               sop: str | None = "1.2.3.4.5") -> Described:  # fmt: skip
    return Described(record, study, series, sop, "Doe^J", "P1", "CT", None, "ito", "0x" + "1" * 40,
                     "00" * 32, None)  # fmt: skip


class _Inbox:
    """A gateway's inbox of three records, the second of which does not describe (altered)
    until ``healed``; the inbox pages and cursors are the gateway's (seq = position)."""

    url = "http://gateway"

    def __init__(self) -> None:
        self.healed = False
        self.asked: list[str] = []

    def inbox(self, after: int = 0) -> dict[str, Any]:
        entries = [{"seq": n, "record": f"b{n}"} for n in (1, 2, 3) if n > after]
        return {"records": entries, "next": 3, "more": False}

    def describe(self, record: str) -> Described:
        self.asked.append(record)
        if record == "b2" and not self.healed:
            raise IntegrityError("the manifest received does not hash to the record's CID")
        if record == "b9":
            raise GatewayUnavailable("gateway down")
        return _described(record)


def test_an_unreadable_record_is_reported_and_tried_again(tmp_path: Path):
    inbox = _Inbox()
    with Catalogue(tmp_path / "c.sqlite3") as catalogue:
        problems = catalogue.refresh(inbox)
        assert [(r, type(e)) for r, e in problems] == [("b2", IntegrityError)]
        assert [e.record for e in catalogue.records()] == ["b1", "b3"]
        inbox.healed = True
        assert catalogue.refresh(inbox) == []
        assert [e.record for e in catalogue.records("1.2.3")] == ["b1", "b2", "b3"]
        assert inbox.asked == ["b1", "b2", "b3", "b2"]  # b1 and b3 were not fetched again
        assert catalogue.studies()[0]["instances"] == 3
    assert oct((tmp_path / "c.sqlite3").stat().st_mode & 0o777) == "0o600"


def test_a_gateway_that_stops_answering_ends_the_refresh(tmp_path: Path):
    inbox = _Inbox()
    inbox.inbox = lambda after=0: {"records": [{"seq": 1, "record": "b9"}], "next": 1,  # type: ignore[method-assign]
                                   "more": False}  # fmt: skip
    with Catalogue(tmp_path / "c.sqlite3") as catalogue, pytest.raises(GatewayUnavailable):
        catalogue.refresh(inbox)


@pytest.mark.parametrize(
    ("study", "series", "sop", "expected"),
    [
        ("1.2.3", "1.2.3.4", "1.2.3.4.5", "1.2.3/1.2.3.4/1.2.3.4.5.dcm"),
        ("1.2.3", "..", "1.2.3.4.5", "1.2.3/bREC"),
        ("../../etc", "1.2", "1.3", "unknown-study/bREC"),
        ("1.2.3", "1.2/../../x", "1.3", "1.2.3/bREC"),
        ("1.2.3", None, "1.3", "1.2.3/bREC"),
    ],
)
def test_study_paths_stay_inside_the_directory(tmp_path, study, series, sop, expected):
    assert study_path(tmp_path, _described("bREC", study, series, sop)) == tmp_path / expected


def test_study_uids_and_record_cids_are_told_apart():
    assert is_study_uid("1.2.840.113619.2.55.3.604688119")
    assert not is_study_uid("bafkreiawwm27dixe4y7ju3er7orwc6jgbsk6omnjmychznvkcuyqgqiacu")
    assert not is_study_uid("1." + "2" * 70)
    assert not is_study_uid("1.2.")
