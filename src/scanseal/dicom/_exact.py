"""Version-2 re-identification tokens: the original header exactly as it was encoded.

DICOM JSON (the version-1 token) reformats DS and IS values ("5.000000" comes back as "5.0"),
drops group lengths and carries no file meta, so a round trip through it is not exact. A
version-2 token holds the original's non-pixel elements encoded as they were read (same VR
form, same byte order), its file meta and its preamble, sealed with AES-256-GCM and bound to the
new SOP Instance UID.

Plaintext: flags (1 byte: implicit VR, little endian, has file meta, has preamble), the
128-byte preamble, the length of the file meta (4 bytes, big endian), the file meta (explicit VR
little endian, as PS3.10 encodes it), then the header in the original's encoding.
"""

from __future__ import annotations

import io
import os
import struct
from collections.abc import Collection
from typing import Final

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.filebase import DicomBytesIO
from pydicom.filereader import read_dataset
from pydicom.filewriter import write_dataset
from pydicom.uid import UID, ExplicitVRBigEndian, ExplicitVRLittleEndian, ImplicitVRLittleEndian

from scanseal.errors import AccessDenied, InvalidInput

VERSION: Final = b"SSDI2"
_FIXED: Final = struct.Struct(">B128sI")
_IMPLICIT, _LITTLE, _HAS_META, _HAS_PREAMBLE = 1, 2, 4, 8
_REFUSED: Final = "re-identification needs the sender's key and this instance's token"


def seal(original: Dataset, instance: str, aes_key: bytes, skip: Collection[str]) -> bytes:
    """A version-2 token of ``original`` without the elements named in ``skip`` (the pixels),
    bound to ``instance`` (the de-identified SOP Instance UID)."""
    implicit, little = _encoding_of(original)
    header = Dataset()
    for element in original:
        if element.keyword not in skip:
            header[element.tag] = element
    meta = original.get("file_meta")
    preamble = getattr(original, "preamble", None)
    kept = isinstance(preamble, bytes) and len(preamble) == 128
    flags = implicit * _IMPLICIT | little * _LITTLE | bool(meta) * _HAS_META | kept * _HAS_PREAMBLE
    encoded_meta = _encode(meta, False, True) if meta else b""
    plain = _FIXED.pack(flags, preamble if kept else b"", len(encoded_meta))
    plain += encoded_meta + _encode(header, implicit, little)
    nonce = os.urandom(12)
    return VERSION + nonce + AESGCM(aes_key).encrypt(nonce, plain, VERSION + instance.encode())


def open_sealed(token: bytes, instance: str, aes_key: bytes) -> Dataset:
    """The original header of a version-2 token, with its file meta as ``file_meta`` (when it
    had one) and its preamble as ``preamble`` (None when it had none)."""
    if not token.startswith(VERSION) or len(token) < len(VERSION) + 12 + 16 + _FIXED.size:
        raise InvalidInput("not a ScanSeal re-identification token")
    nonce, body = token[len(VERSION) : len(VERSION) + 12], token[len(VERSION) + 12 :]
    try:
        plain = AESGCM(aes_key).decrypt(nonce, body, VERSION + instance.encode())
    except InvalidTag:
        raise AccessDenied(_REFUSED) from None
    flags, preamble, meta_length = _FIXED.unpack_from(plain)
    start, end = _FIXED.size, _FIXED.size + meta_length
    header = _decode(plain[end:], bool(flags & _IMPLICIT), bool(flags & _LITTLE))
    if flags & _HAS_META:
        header.file_meta = FileMetaDataset(_decode(plain[start:end], False, True))
    header.preamble = preamble if flags & _HAS_PREAMBLE else None
    return header


def file_meta_for(dataset: Dataset, syntax: str | None = None) -> FileMetaDataset:
    """A file meta of our own for ``dataset``: its SOP class and instance and ``syntax`` (else
    the transfer syntax ``dataset`` has). Nothing of whoever wrote a file before (Source
    Application Entity Title, private information); pydicom adds its implementation UID and
    version when the file is written."""
    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = dataset.get("SOPClassUID")
    meta.MediaStorageSOPInstanceUID = dataset.get("SOPInstanceUID")
    meta.TransferSyntaxUID = UID(syntax) if syntax else transfer_syntax(dataset)
    return meta


def transfer_syntax(dataset: Dataset) -> UID:
    """The transfer syntax of ``dataset``'s file meta, else the one its encoding implies."""
    declared = dataset.get("file_meta", Dataset()).get("TransferSyntaxUID")
    if declared:
        return UID(declared)
    implicit, little = dataset.original_encoding
    if implicit:
        return ImplicitVRLittleEndian
    return ExplicitVRBigEndian if little is False else ExplicitVRLittleEndian


def _encoding_of(dataset: Dataset) -> tuple[bool, bool]:
    """(implicit VR, little endian) the data set was read in, else what its syntax says."""
    implicit, little = dataset.original_encoding
    if implicit is not None and little is not None:
        return bool(implicit), bool(little)
    syntax = transfer_syntax(dataset)
    return bool(syntax.is_implicit_VR), bool(syntax.is_little_endian)


def _encode(dataset: Dataset, implicit: bool, little: bool) -> bytes:
    out = DicomBytesIO()
    out.is_implicit_VR, out.is_little_endian = implicit, little
    write_dataset(out, dataset)
    return bytes(out.getvalue())


def _decode(data: bytes, implicit: bool, little: bool) -> Dataset:
    return read_dataset(io.BytesIO(data), implicit, little)
