"""De-identification before an external share: PS3.15 Basic Application Level Confidentiality
Profile, with a keyed mapping that only the sender can reverse.

The rules are the standard's Table E.1-1 (:mod:`scanseal.dicom._profile`, generated data): each
element at each depth gets its row's action, the chosen options' columns, and for a compound
action (X/Z, X/D, Z/D, X/Z/D, X/Z/U*) the Type its IOD gives it in the sequence that holds it, so
the output stays a valid instance of its IOD.

Pseudonyms (PatientID, PatientName), re-mapped UIDs and shifted dates are HMAC-SHA-256 of the
original under sub-keys of the sender's 32-byte secret, so the same patient, study and series get
the same replacement in every instance (a study stays a study) and nobody without the secret can
link them back. The originals travel only in the *re-identification token*: the original's
non-pixel elements exactly as encoded, with its file meta and preamble (:mod:`._exact`), sealed
with AES-256-GCM under another sub-key and bound to the new SOP Instance UID. The sender keeps
the token; with the secret it restores the instance.
"""

from __future__ import annotations

import base64
import copy
import datetime
import hashlib
import hmac
import os
import re
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

_VERSION_1: Final = b"SSDI1"
_PIXEL_KEYWORDS: Final = frozenset({"PixelData", "FloatPixelData", "DoubleFloatPixelData"})
_KEEP_UIDS: Final = frozenset({"SOPClassUID", "TransferSyntaxUID", "MediaStorageSOPClassUID"})
_DATE_VRS: Final = frozenset({"DA", "DT", "TM"})


class Option(Enum):
    """PS3.16 CID 7050 codes this implementation applies; the value is the DCM code value."""

    BASIC = "113100"
    CLEAN_STRUCTURED_CONTENT = "113104"
    CLEAN_DESCRIPTORS = "113105"
    RETAIN_FULL_DATES = "113106"
    RETAIN_MODIFIED_DATES = "113107"
    RETAIN_PATIENT_CHARACTERISTICS = "113108"
    RETAIN_DEVICE_IDENTITY = "113109"
    RETAIN_UIDS = "113110"
    RETAIN_INSTITUTION_IDENTITY = "113112"

    @property
    def meaning(self) -> str:
        return _MEANINGS[self]


_MEANINGS: Final = {
    Option.BASIC: "Basic Application Confidentiality Profile",
    Option.CLEAN_STRUCTURED_CONTENT: "Clean Structured Content Option",
    Option.CLEAN_DESCRIPTORS: "Clean Descriptors Option",
    Option.RETAIN_FULL_DATES: "Retain Longitudinal Temporal Information Full Dates Option",
    Option.RETAIN_MODIFIED_DATES: "Retain Longitudinal Temporal Information Modified Dates Option",
    Option.RETAIN_PATIENT_CHARACTERISTICS: "Retain Patient Characteristics Option",
    Option.RETAIN_DEVICE_IDENTITY: "Retain Device Identity Option",
    Option.RETAIN_UIDS: "Retain UIDs Option",
    Option.RETAIN_INSTITUTION_IDENTITY: "Retain Institution Identity Option",
}

KEEP_WORDS: Final = {
    "dates": Option.RETAIN_MODIFIED_DATES,
    "patient": Option.RETAIN_PATIENT_CHARACTERISTICS,
    "device": Option.RETAIN_DEVICE_IDENTITY,
    "uids": Option.RETAIN_UIDS,
    "full-dates": Option.RETAIN_FULL_DATES,
    "institution": Option.RETAIN_INSTITUTION_IDENTITY,
}
"""``scanseal deid --keep WORD``: the Retain options."""
CLEAN_WORDS: Final = {
    "descriptors": Option.CLEAN_DESCRIPTORS,
    "structured-content": Option.CLEAN_STRUCTURED_CONTENT,
}
"""``scanseal deid --clean WORD``: the Clean options."""


def choose_options(keep: Iterable[str] = (), clean: Iterable[str] = ()) -> list[Option]:
    """The options named by ``--keep`` and ``--clean`` words; InvalidInput for any other word
    and for both date options at once (full dates and modified dates exclude each other)."""
    chosen = [_word(KEEP_WORDS, "--keep", w) for w in keep]
    chosen += [_word(CLEAN_WORDS, "--clean", w) for w in clean]
    _check(chosen)
    return chosen


def _word(words: dict[str, Option], flag: str, word: str) -> Option:
    if word not in words:
        raise InvalidInput(f"{flag} takes {', '.join(words)}, not {word!r}")
    return words[word]


def _check(options: Iterable[Option]) -> None:
    if {Option.RETAIN_FULL_DATES, Option.RETAIN_MODIFIED_DATES} <= set(options):
        raise InvalidInput("retain full dates and retain modified dates exclude each other")


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
    """A de-identified copy of ``dataset`` (the input is not modified) and its token.

    Every element at every depth gets the action of its row in PS3.15 Table E.1-1, modified by
    the chosen options and resolved against the Type the object's IOD gives it there. The copy
    gets a file meta of its own (nothing of the source's: no Source Application Entity Title,
    no preamble) in the source's transfer syntax; the token is version 2, which restores the
    original exactly, file meta and preamble included."""
    chosen = frozenset(options) | {Option.BASIC}
    _check(chosen)
    out = _copy(dataset)
    patient = str(dataset.get("PatientID", "") or "")
    try:
        _check_numbers(dataset)
        iod = _profile.iod_for(str(dataset.get("SOPClassUID", "")))
        _Cleaner(key, chosen, patient, iod, _Scrubber(dataset)).clean(out)
        out.PatientID = key.pseudonym(patient)
        out.PatientName = "ANON^" + out.PatientID
        _record(out, chosen)
        out.file_meta = _exact.file_meta_for(out, _exact.transfer_syntax(dataset))
        out.preamble = None  # pydicom writes 128 zero bytes
        instance = str(out.get("SOPInstanceUID", ""))
        token = _exact.seal(dataset, instance, key._token_key(), _PIXEL_KEYWORDS)
    except ValueError as error:  # pydicom converts values lazily, and a bad one raises here
        raise InvalidInput(f"a value is not valid for its VR: {error}") from None
    return Deidentified(out, token)


def _check_numbers(dataset: Dataset) -> None:
    """ValueError for an IS or DS value that is no number, at any depth: pydicom keeps one as
    text with a warning, and the action table keeps most numbers as they are, so it would
    travel malformed into the recipient's system."""
    for element in dataset.iterall():
        if element.VR in ("IS", "DS") and not element.is_empty:
            for value in element.value if element.VM > 1 else [element.value]:
                if str(value).strip():
                    float(str(value))


def reidentify(dataset: Dataset, token: bytes, key: DeidKey) -> Dataset:
    """The original instance back: its non-pixel elements, file meta and preamble, with the
    pixels of ``dataset`` (a result may come back with changed pixels) and the transfer syntax
    they are encoded in.

    A version-2 token (what :func:`deidentify` writes) restores every value exactly as it was
    encoded and the original's file meta (MediaStorageSOPInstanceUID included, where it
    differed from SOPInstanceUID). A version-1 token (DICOM JSON, written by earlier releases)
    restores the values as DICOM JSON carries them (DS and IS reformatted, no group lengths)
    under a file meta of our own. AccessDenied without the right key or for another instance's
    token.
    """
    instance = str(dataset.get("SOPInstanceUID", ""))
    if token.startswith(_exact.VERSION):
        original = _exact.open_sealed(token, instance, key._token_key())
    else:
        original = Dataset.from_json(_open_version_1(key, instance, token))
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


def applied_options(dataset: Dataset) -> list[str]:
    """The code values recorded in DeidentificationMethodCodeSequence."""
    return [str(item.CodeValue) for item in dataset.get("DeidentificationMethodCodeSequence", [])]


# --- the rules

_TEXT_VRS: Final = frozenset({"AE", "CS", "LO", "LT", "PN", "SH", "ST", "UC", "UT"})
_FREE_TEXT_VRS: Final = _TEXT_VRS - {"CS"}  # coded strings name things, never a person
_CONTENT_TEXT: Final = frozenset({"TextValue", "UnformattedTextValue"})
"""Free text of SR content items and graphic annotations, outside the table but replaced or
cleaned with the sequence (ContentSequence, GraphicAnnotationSequence) that holds it."""
_OUTSIDE_DATES: Final = {
    Option.RETAIN_FULL_DATES.value: "K",
    Option.RETAIN_MODIFIED_DATES.value: "C",
}
_DUMMY_TEXT: Final = "ANONYMIZED"
_DUMMIES: Final[dict[str, object]] = {
    "DA": "19000101", "TM": "000000", "DT": "19000101000000", "PN": "ANONYMOUS", "AS": "000Y",
    "IS": "0", "DS": "0", "US": 0, "SS": 0, "UL": 0, "SL": 0, "UV": 0, "SV": 0, "FL": 0.0,
    "FD": 0.0, "AT": 0, "UR": _DUMMY_TEXT,
}  # fmt: skip
_BINARY_DUMMY: Final = bytes(8)  # a valid length for OB, OW, OF, OD, OL, OV and UN alike
_PDF_DUMMY: Final = (
    b"%PDF-1.4\n1 0 obj<</Type/Catalog/Pages 2 0 R>>endobj\n"
    b"2 0 obj<</Type/Pages/Kids[3 0 R]/Count 1>>endobj\n"
    b"3 0 obj<</Type/Page/Parent 2 0 R/MediaBox[0 0 612 792]>>endobj\n"
    b"trailer<</Root 1 0 R>>\n%%EOF\n"
)  # an empty page: EncapsulatedDocument is Type 1 and its action D


class _Cleaner:
    """Applies the table to one instance: ``clean`` walks every item of every sequence."""

    def __init__(
        self,
        key: DeidKey,
        options: frozenset[Option],
        patient: str,
        iod: int | None,
        scrubber: _Scrubber,
    ) -> None:
        self.key = key
        self.codes = frozenset(o.value for o in options)
        self.shift_dates = Option.RETAIN_MODIFIED_DATES in options
        self.patient = patient
        self.iod = iod
        self.scrubber = scrubber

    def clean(self, dataset: Dataset, parent: str = "", within: str = "") -> None:
        """``parent`` is the keyword of the sequence that holds ``dataset`` (its Types depend on
        it); ``within`` is D or C inside a sequence replaced or cleaned as a whole."""
        for element in list(dataset):
            self._element(dataset, element, parent, within)

    def _element(self, dataset: Dataset, element: DataElement, parent: str, within: str) -> None:
        group = element.tag.group
        if element.keyword in _PIXEL_KEYWORDS:
            return
        if group == 0xFFFC or 0x6000 <= group <= 0x60FF:
            del dataset[element.tag]  # trailing padding and every overlay element
            return
        action = self.action(element, parent, within)
        if action == "X":
            del dataset[element.tag]
        elif action == "Z":
            self._empty(element)
        elif action == "D":
            self._dummy(element, within)
        elif action == "U":
            self._uid(element, within)
        elif action == "C":
            self._clean(element)
        elif element.VR == "SQ":  # K
            self._items(element, within)

    def action(self, element: DataElement, parent: str, within: str = "") -> str:
        """X, Z, D, U, K or C for this element here: its row (or ScanSeal's rule for what the
        table does not list), the chosen options' columns, then the IOD's Type."""
        basic, columns = self._row(element, within)
        chosen = {columns[code] for code in self.codes if code in columns}
        if "K" in chosen:
            return "K"
        if "C" in chosen:
            return "C"
        if basic in ("X", "D", "U", "K"):
            return basic
        return _resolve(basic, _profile.required_type(element.keyword, parent, self.iod))

    def _row(self, element: DataElement, within: str) -> tuple[str, dict[str, str]]:
        row = _profile.row_for(element.tag)
        if row is not None:
            return row.action, row.options
        if within and element.keyword in _CONTENT_TEXT:
            return within, {}
        if element.VR in _DATE_VRS:
            return "X/Z/D", _OUTSIDE_DATES  # outside the table: as strict as a listed date
        if element.VR == "PN":
            return "X/Z/D", {}
        if element.VR == "UI" and element.keyword not in _KEEP_UIDS:
            return "U", {Option.RETAIN_UIDS.value: "K"}
        return "K", {}

    def _items(self, element: DataElement, within: str) -> None:
        for item in element.value or []:
            self.clean(item, element.keyword, within)

    def _empty(self, element: DataElement) -> None:
        if element.keyword == "PatientID" and element.value:
            element.value = self.key.pseudonym(str(element.value))  # Z allows a dummy
        elif element.VR == "SQ":
            element.value = Sequence()
        else:
            element.value = None

    def _dummy(self, element: DataElement, within: str) -> None:
        """A value valid for the VR that tells nothing: the keyed pseudonym for PatientID, a
        keyed UID, the same structure with its own contents replaced for a sequence."""
        vr = element.VR.split(" or ")[0]  # "US or SS" where pydicom could not decide
        if vr == "SQ":
            self._items(element, "D")
        elif element.keyword == "PatientID":
            element.value = self.key.pseudonym(str(element.value or ""))
        elif vr == "UI":
            self._uid(element, within, dummy=True)
        elif element.keyword == "EncapsulatedDocument":
            element.value = _PDF_DUMMY
        elif vr in _DUMMIES:
            element.value = _DUMMIES[vr]
        elif vr in _TEXT_VRS:
            element.value = _DUMMY_TEXT
        else:
            element.value = _BINARY_DUMMY

    def _uid(self, element: DataElement, within: str, dummy: bool = False) -> None:
        """Keyed re-mapping, one-to-one and the same for every instance; well-known UIDs (SOP
        Classes, transfer syntaxes, coding schemes of the standard) stay."""
        if element.VR == "SQ":
            self._items(element, within)
            return
        values = list(element.value) if element.VM > 1 else [element.value]
        if dummy and not any(values):
            values = ["dummy"]
        mapped = [v if (not v or v in UID_dictionary) else self.key.uid(str(v)) for v in values]
        element.value = mapped if len(mapped) > 1 else mapped[0]

    def _clean(self, element: DataElement) -> None:
        """C: dates moved back by the patient's keyed shift (times kept), sequences kept with
        their identifying content cleaned, text kept with identifying words struck out."""
        vr = element.VR
        if vr == "SQ":
            self._items(element, "C")
        elif vr in ("DA", "DT"):
            days = self.key.day_shift(self.patient)
            values = list(element.value) if element.VM > 1 else [element.value]
            shifted = [_shift(str(v or ""), days) for v in values]
            element.value = shifted if len(shifted) > 1 else shifted[0]
        elif vr in _TEXT_VRS and vr != "PN" and element.value:
            values = list(element.value) if element.VM > 1 else [element.value]
            cleaned = [self.scrubber.scrub(str(v)) for v in values]
            element.value = cleaned if len(cleaned) > 1 else cleaned[0]
        elif vr == "PN":
            element.value = _DUMMIES["PN"] if element.value else None


def _resolve(action: str, kind: str) -> str:
    """A compound action (X/Z, X/D, Z/D, X/Z/D, X/Z/U*, or Z where Type 1) for Type ``kind``:
    a dummy where Type 1, empty where Type 2, removed where Type 3.

    X/Z/U* (the reference sequences) keeps the sequence with its UIDs re-mapped wherever the IOD
    requires it, Type 2 included: an empty SourceImageSequence leaves the instances its Common
    Instance Reference module lists unreferenced, which makes the object invalid."""
    choices = action.split("/")
    if kind in ("1", "2") and "U*" in choices:
        return "U"
    if kind == "1":
        return "D"
    if kind == "2":
        return "Z"
    return choices[0] if choices[0] != "U*" else "X"


class _Scrubber:
    """Strikes the instance's own identifying values out of text the options keep (Clean
    Descriptors, Clean Structured Content): every person name and its parts, every date, every
    value of a table attribute that is itself removed or replaced, and runs of six or more digits
    (record numbers, telephone numbers)."""

    _DIGITS: Final = re.compile(r"\d[\d\-/. ]{4,}\d")

    def __init__(self, dataset: Dataset) -> None:
        words: set[str] = set()
        for element in dataset.iterall():
            words |= _identifying(element)
        ordered = sorted((w for w in words if len(w) >= 3), key=len, reverse=True)
        self._words = re.compile("|".join(map(re.escape, ordered)), re.I) if ordered else None

    def scrub(self, text: str) -> str:
        if self._words is not None:
            text = self._words.sub(lambda m: "X" * len(m.group()), text)
        return self._DIGITS.sub(lambda m: "X" * len(m.group()), text)


def _identifying(element: DataElement) -> set[str]:
    vr = element.VR
    if (vr not in _FREE_TEXT_VRS and vr not in ("DA", "DT")) or not element.value:
        return set()
    values = [str(v) for v in (element.value if element.VM > 1 else [element.value])]
    if vr == "PN":
        return set(values) | {part for v in values for part in re.split(r"[\^= ]+", v)}
    if vr in ("DA", "DT"):
        return {v[:8] for v in values}
    row = _profile.row_for(element.tag)
    cleaned = Option.CLEAN_DESCRIPTORS.value, Option.CLEAN_STRUCTURED_CONTENT.value
    if row is None or row.action == "U" or any(c in row.options for c in cleaned):
        return set()
    return set(values)


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
    if Option.RETAIN_FULL_DATES in options:
        dataset.LongitudinalTemporalInformationModified = "UNMODIFIED"
    elif Option.RETAIN_MODIFIED_DATES in options:
        dataset.LongitudinalTemporalInformationModified = "MODIFIED"
    else:
        dataset.LongitudinalTemporalInformationModified = "REMOVED"


# --- the token


def _copy(dataset: Dataset) -> Dataset:
    return copy.deepcopy(dataset)


def _open_version_1(key: DeidKey, instance: str, token: bytes) -> str:
    """The DICOM JSON of a version-1 token: b"SSDI1", a 12-byte nonce, AES-256-GCM of the
    original's non-pixel elements as DICOM JSON, with b"SSDI1" and the new SOP Instance UID as
    associated data."""
    if not token.startswith(_VERSION_1) or len(token) < len(_VERSION_1) + 28:
        raise InvalidInput("not a ScanSeal re-identification token")
    nonce = token[len(_VERSION_1) : len(_VERSION_1) + 12]
    body = token[len(_VERSION_1) + 12 :]
    try:
        plain = AESGCM(key._token_key()).decrypt(nonce, body, _VERSION_1 + instance.encode())
    except InvalidTag:
        raise AccessDenied(
            "re-identification needs the sender's key and this instance's token"
        ) from None
    return plain.decode("utf-8")
