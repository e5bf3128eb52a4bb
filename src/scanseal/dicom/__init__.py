"""DICOM interoperability: de-identification (PS3.15), a Storage SCP that seals what modalities
push, and forwarding opened instances into a PACS. docs/DICOM.md describes each."""

from __future__ import annotations

from scanseal.dicom.deid import Deidentified, DeidKey, Option, deidentify, reidentify

__all__ = ["DeidKey", "Deidentified", "Option", "deidentify", "reidentify"]
