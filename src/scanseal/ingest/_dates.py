"""DICOM DA / TM / DT values to ISO 8601, so no consumer ever parses DICOM date strings."""

from __future__ import annotations

from pydicom.dataset import Dataset
from pydicom.valuerep import DA, DT, TM


def _iso_date(value: str | None) -> str | None:
    """Return YYYY-MM-DD, or None when absent or not a valid DICOM date."""
    if not value:
        return None
    try:
        return DA(value).isoformat()
    except (ValueError, TypeError, OverflowError):
        return None


def _iso_time(value: str | None) -> str | None:
    """Return HH:MM:SS[.ffffff], or None when absent or not a valid DICOM time."""
    if not value:
        return None
    try:
        return TM(value).isoformat()
    except (ValueError, TypeError, OverflowError):
        return None


def date_time(date: str | None, time: str | None) -> str | None:
    """Join a DA and a TM: date-time when both parse, the date alone when only it does."""
    iso_date = _iso_date(date)
    if iso_date is None:
        return None
    iso_time = _iso_time(time)
    return iso_date if iso_time is None else f"{iso_date}T{iso_time}"


def _iso_datetime(value: str | None) -> str | None:
    """Return an ISO 8601 date-time (with offset when DT carries one), or None."""
    if not value:
        return None
    try:
        return DT(value).isoformat()
    except (ValueError, TypeError, OverflowError):
        return None


def acquisition(ds: Dataset) -> str | None:
    """AcquisitionDateTime if valid, else AcquisitionDate with AcquisitionTime."""
    combined = _iso_datetime(_plain(ds, "AcquisitionDateTime"))
    if combined is not None:
        return combined
    return date_time(_plain(ds, "AcquisitionDate"), _plain(ds, "AcquisitionTime"))


def _plain(ds: Dataset, keyword: str) -> str | None:
    """Return a single-valued attribute as text; multi-valued or absent gives None."""
    value = ds.get(keyword)
    if value is None or isinstance(value, (list, tuple)):
        return None
    return str(value).strip() or None
