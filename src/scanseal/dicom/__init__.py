"""DICOM interoperability: de-identification (PS3.15), a Storage SCP that seals what modalities
push, and forwarding opened instances into a PACS. docs/DICOM.md describes each."""

from __future__ import annotations

from scanseal.dicom.deid import (
    CLEAN_WORDS,
    KEEP_WORDS,
    Deidentified,
    DeidKey,
    Option,
    applied_options,
    choose_options,
    deidentify,
    reidentify,
)

__all__ = [
    "CLEAN_WORDS",
    "KEEP_WORDS",
    "DeidKey",
    "Deidentified",
    "Option",
    "applied_options",
    "choose_options",
    "deidentify",
    "reidentify",
]
