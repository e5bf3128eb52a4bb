"""The Storage SCP's application entity, the same in the gateway and in its acceptor
processes: every storage SOP Class in every transfer syntax, cheap to copy per association."""

from __future__ import annotations

import copy
from typing import Any

from pynetdicom import AE, ALL_TRANSFER_SYNTAXES, AllStoragePresentationContexts
from pynetdicom.presentation import PresentationContext
from pynetdicom.sop_class import Verification  # type: ignore[attr-defined]

from scanseal.dicom.config import DicomConfig


def storage_ae(config: DicomConfig) -> AE:
    """The SCP's application entity: every storage SOP Class in every transfer syntax, and
    Verification; no PDU size limit (the sender picks large PDUs)."""
    ae = AE(ae_title=config.ae_title)
    for context in AllStoragePresentationContexts:
        ae.add_supported_context(str(context.abstract_syntax), ALL_TRANSFER_SYNTAXES)
    ae.add_supported_context(Verification)
    ae.maximum_pdu_size = 0
    return ae


class Contexts(list[PresentationContext]):
    """A server's presentation contexts, copied cheaply for each association: pynetdicom
    deep-copies the list for every association it accepts (the acceptor's negotiation writes
    into the copies), which for every storage SOP Class in every transfer syntax (171 contexts,
    7,654 transfer syntax UIDs) costs 59 ms of CPU per association; a context's one mutable
    member is its list of transfer syntaxes, so a shallow copy with that list copied is the
    same copy in 0.5 ms."""

    def __deepcopy__(self, memo: dict[int, Any]) -> list[PresentationContext]:
        copies = []
        for context in self:
            twin = copy.copy(context)
            twin._transfer_syntax = list(context._transfer_syntax)
            copies.append(twin)
        return copies
