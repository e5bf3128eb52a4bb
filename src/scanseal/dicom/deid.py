"""De-identification before an external share: PS3.15 Basic Application Level Confidentiality
Profile, with a keyed mapping that only the sender can reverse.

Pseudonyms (PatientID, PatientName), re-mapped UIDs and shifted dates are HMAC-SHA-256 of the
original under sub-keys of the sender's 32-byte secret, so the same patient, study and series get
the same replacement in every instance (a study stays a study) and nobody without the secret can
link them back. The originals travel only in the *re-identification token*: the removed and
replaced elements as DICOM JSON, sealed with AES-256-GCM under another sub-key and bound to the
new SOP Instance UID. The sender keeps the token; with the secret it restores the instance.
"""

from __future__ import annotations

import base64
import copy
import datetime
import hashlib
import hmac
import os
from collections.abc import Iterable
from dataclasses import dataclass
from enum import Enum
from typing import Final

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from pydicom.dataelem import DataElement
from pydicom.dataset import Dataset
from pydicom.sequence import Sequence
from pydicom.uid import UID_dictionary  # type: ignore[attr-defined]

from scanseal.dicom import _exact, _profile
from scanseal.errors import AccessDenied, InvalidInput

_TOKEN_VERSION: Final = b"SSDI1"
_PIXEL_KEYWORDS: Final = frozenset(
    {"PixelData", "FloatPixelData", "DoubleFloatPixelData", "EncapsulatedDocument"}
)
_KEEP_UIDS: Final = frozenset({"SOPClassUID", "TransferSyntaxUID", "MediaStorageSOPClassUID"})
_DATE_VRS: Final = frozenset({"DA", "DT", "TM"})
_RECORD_KEYWORDS: Final = frozenset(
    {"PatientIdentityRemoved", "DeidentificationMethod", "DeidentificationMethodCodeSequence",
     "LongitudinalTemporalInformationModified"}
)  # fmt: skip


class Option(Enum):
    """PS3.16 CID 7050 codes this implementation applies; the value is the DCM code value."""

    BASIC = "113100"
    RETAIN_MODIFIED_DATES = "113107"
    RETAIN_PATIENT_CHARACTERISTICS = "113108"
    RETAIN_DEVICE_IDENTITY = "113109"
    RETAIN_UIDS = "113110"

    @property
    def meaning(self) -> str:
        return _MEANINGS[self]


_MEANINGS: Final = {
    Option.BASIC: "Basic Application Confidentiality Profile",
    Option.RETAIN_MODIFIED_DATES: "Retain Longitudinal Temporal Information Modified Dates Option",
    Option.RETAIN_PATIENT_CHARACTERISTICS: "Retain Patient Characteristics Option",
    Option.RETAIN_DEVICE_IDENTITY: "Retain Device Identity Option",
    Option.RETAIN_UIDS: "Retain UIDs Option",
}


class DeidKey:
    """The sender's secret; every pseudonym, UID, date shift and the token key derive from it."""

    def __init__(self, secret: bytes) -> None:
        if len(secret) != 32:
            raise InvalidInput("a de-identification key is 32 bytes")
        self._secret = secret

    @classmethod
    def generate(cls) -> DeidKey:
        return cls(os.urandom(32))

    def _sub(self, label: str, data: str) -> bytes:
        key = hmac.new(self._secret, b"scanseal-deid/" + label.encode(), hashlib.sha256).digest()
        return hmac.new(key, data.encode("utf-8"), hashlib.sha256).digest()

    def pseudonym(self, patient_id: str) -> str:
        return "SS" + base64.b32encode(self._sub("pseudonym", patient_id)[:10]).decode()

    def uid(self, original: str) -> str:
        """A 2.25 UID (ISO/IEC 9834-8 style, decimal of 128 bits): at most 44 characters."""
        return "2.25." + str(int.from_bytes(self._sub("uid", original)[:16], "big"))

    def day_shift(self, patient_id: str) -> int:
        """Days (1..3650) to move this patient's dates back; the same for all their studies."""
        return 1 + int.from_bytes(self._sub("dates", patient_id)[:4], "big") % 3650

    def _token_key(self) -> bytes:
        return self._sub("token", "aes-256-gcm")


@dataclass(frozen=True)
class Deidentified:
    dataset: Dataset
    token: bytes
    """Sealed originals for :func:`reidentify`; keep it with the sender, never send it."""


def deidentify(dataset: Dataset, key: DeidKey, options: Iterable[Option] = ()) -> Deidentified:
    """A de-identified copy of ``dataset`` (the input is not modified) and its token."""
    chosen = frozenset(options) | {Option.BASIC}
    out = _copy(dataset)
    patient = str(dataset.get("PatientID", "") or "")
    originals = _originals(dataset)
    _Cleaner(key, chosen, patient).clean(out)
    out.PatientID = key.pseudonym(patient)
    out.PatientName = "ANON^" + out.PatientID
    _record(out, chosen)
    if "SOPInstanceUID" in out and hasattr(out, "file_meta"):
        out.file_meta.MediaStorageSOPInstanceUID = out.SOPInstanceUID
    token = _seal(key, str(out.get("SOPInstanceUID", "")), originals)
    return Deidentified(out, token)


def reidentify(dataset: Dataset, token: bytes, key: DeidKey) -> Dataset:
    """The original instance back: its non-pixel elements, file meta and preamble, with the
    pixels of ``dataset`` (a result may come back with changed pixels) and the transfer syntax
    they are encoded in.

    A version-2 token (:func:`seal_original`) restores every value exactly as it was encoded
    and the original's file meta (MediaStorageSOPInstanceUID included, where it differed from
    SOPInstanceUID). A version-1 token (DICOM JSON) restores the values as DICOM JSON carries
    them (DS and IS reformatted, no group lengths) under a file meta of our own. AccessDenied
    without the right key or for another instance's token.
    """
    instance = str(dataset.get("SOPInstanceUID", ""))
    if token.startswith(_exact.VERSION):
        original = _exact.open_sealed(token, instance, key._token_key())
    else:
        original = Dataset.from_json(_open(key, instance, token))
    restored = _copy(dataset)
    for element in list(restored):
        if element.keyword not in _PIXEL_KEYWORDS:
            del restored[element.tag]
    for element in original:
        restored[element.tag] = element
    syntax = _exact.transfer_syntax(dataset)
    restored.file_meta = original.get("file_meta") or _exact.file_meta_for(restored, syntax)
    restored.file_meta.TransferSyntaxUID = syntax
    restored.preamble = getattr(original, "preamble", None)
    return restored


def seal_original(original: Dataset, deidentified: Dataset, key: DeidKey) -> bytes:
    """A version-2 token for ``deidentified``: ``original`` without its pixels exactly as
    encoded, with its file meta and preamble, so :func:`reidentify` restores it exactly."""
    instance = str(deidentified.get("SOPInstanceUID", ""))
    return _exact.seal(original, instance, key._token_key(), _PIXEL_KEYWORDS)


def applied_options(dataset: Dataset) -> list[str]:
    """The code values recorded in DeidentificationMethodCodeSequence."""
    return [str(item.CodeValue) for item in dataset.get("DeidentificationMethodCodeSequence", [])]


# --- the rules


class _Cleaner:
    def __init__(self, key: DeidKey, options: frozenset[Option], patient: str) -> None:
        self.key = key
        self.options = options
        self.patient = patient
        retained: set[str] = set()
        if Option.RETAIN_PATIENT_CHARACTERISTICS in options:
            retained |= _profile.PATIENT_CHARACTERISTICS
        if Option.RETAIN_DEVICE_IDENTITY in options:
            retained |= _profile.DEVICE_IDENTITY
        self.retained = frozenset(retained)

    def clean(self, dataset: Dataset) -> None:
        for element in list(dataset):
            self._element(dataset, element)

    def _element(self, dataset: Dataset, element: DataElement) -> None:
        keyword = element.keyword
        group = element.tag.group
        if keyword in _PIXEL_KEYWORDS or keyword in self.retained:
            return
        if element.tag.is_private or 0x5000 <= group <= 0x50FF or 0x6000 <= group <= 0x60FF:
            del dataset[element.tag]  # private attributes, curves and overlays
        elif group == 0xFFFC:
            del dataset[element.tag]  # trailing padding: free bytes that can hide anything
        elif element.VR in _DATE_VRS and Option.RETAIN_MODIFIED_DATES in self.options:
            self._date(element)
        elif keyword in _profile.REMOVE:
            del dataset[element.tag]
        elif keyword in _profile.EMPTY or element.VR == "PN":
            element.value = None
        elif element.VR == "UI":
            self._uid(element)
        elif element.VR in _DATE_VRS:
            self._date(element)
        elif element.VR == "SQ":
            for item in element.value:
                self.clean(item)

    def _uid(self, element: DataElement) -> None:
        if element.keyword in _KEEP_UIDS or Option.RETAIN_UIDS in self.options:
            return
        if element.keyword == "DeviceUID" and Option.RETAIN_DEVICE_IDENTITY in self.options:
            return
        values = element.value if element.VM > 1 else [element.value]
        mapped = [v if (not v or v in UID_dictionary) else self.key.uid(str(v)) for v in values]
        element.value = mapped if element.VM > 1 else mapped[0]

    def _date(self, element: DataElement) -> None:
        """Dates move back by the patient's keyed shift under 113107; otherwise emptied."""
        if Option.RETAIN_MODIFIED_DATES not in self.options:
            element.value = None
        elif element.VR != "TM":
            element.value = _shift(str(element.value or ""), self.key.day_shift(self.patient))


def _shift(value: str, days: int) -> str:
    if len(value) < 8:
        return value
    try:
        day = datetime.date(int(value[:4]), int(value[4:6]), int(value[6:8]))
    except ValueError:
        return ""
    return (day - datetime.timedelta(days=days)).strftime("%Y%m%d") + value[8:]


def _record(dataset: Dataset, options: frozenset[Option]) -> None:
    dataset.PatientIdentityRemoved = "YES"
    ordered = sorted(options, key=lambda o: o.value)
    dataset.DeidentificationMethod = "PS3.15 E.1 Basic Profile; " + ", ".join(
        o.value for o in ordered
    )
    codes = []
    for option in ordered:
        item = Dataset()
        item.CodeValue = option.value
        item.CodingSchemeDesignator = "DCM"
        item.CodeMeaning = option.meaning
        codes.append(item)
    dataset.DeidentificationMethodCodeSequence = Sequence(codes)
    dated = Option.RETAIN_MODIFIED_DATES in options
    dataset.LongitudinalTemporalInformationModified = "MODIFIED" if dated else "REMOVED"


# --- the token


def _copy(dataset: Dataset) -> Dataset:
    return copy.deepcopy(dataset)


def _originals(dataset: Dataset) -> str:
    """Every non-pixel element of the original as DICOM JSON (file meta excluded)."""
    header = Dataset()
    for element in dataset:
        if element.keyword not in _PIXEL_KEYWORDS:
            header[element.tag] = element
    return header.to_json()


def _seal(key: DeidKey, instance: str, originals: str) -> bytes:
    nonce = os.urandom(12)
    aad = _TOKEN_VERSION + instance.encode()
    body = AESGCM(key._token_key()).encrypt(nonce, originals.encode("utf-8"), aad)
    return _TOKEN_VERSION + nonce + body


def _open(key: DeidKey, instance: str, token: bytes) -> str:
    if not token.startswith(_TOKEN_VERSION) or len(token) < len(_TOKEN_VERSION) + 28:
        raise InvalidInput("not a ScanSeal re-identification token")
    nonce = token[len(_TOKEN_VERSION) : len(_TOKEN_VERSION) + 12]
    body = token[len(_TOKEN_VERSION) + 12 :]
    try:
        plain = AESGCM(key._token_key()).decrypt(nonce, body, _TOKEN_VERSION + instance.encode())
    except InvalidTag:
        raise AccessDenied(
            "re-identification needs the sender's key and this instance's token"
        ) from None
    return plain.decode("utf-8")
