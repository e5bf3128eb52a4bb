"""The one exception hierarchy of ScanSeal.

Every failure a user can cause or meet is one of these classes. The CLI maps each to a one-line
message and a stable exit code; the gateway maps each to a stable HTTP status. Anything else that
escapes is a bug in ScanSeal, not a user's mistake.
"""

from __future__ import annotations


class ScanSealError(Exception):
    """Base class: a failure with a one-line reason meant for the person at the keyboard."""

    exit_code: int = 1
    http_status: int = 500

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason

    def __str__(self) -> str:
        return self.reason


class InvalidInput(ScanSealError):
    """The input is not something ScanSeal accepts (malformed file, bad argument, bad card)."""

    exit_code = 2
    http_status = 400


class Unreadable(InvalidInput):
    """The input claims a format but cannot be parsed or decoded as it (a DICOM receiver answers
    C210 "cannot understand"; everywhere else it is an InvalidInput)."""


class IntegrityError(ScanSealError):
    """Bytes changed: an authentication tag, a hash, a signature or a CID does not match."""

    exit_code = 3
    http_status = 422


class AccessDenied(ScanSealError):
    """The caller may not do this: not a recipient, wrong passphrase, revoked, unauthorized."""

    exit_code = 4
    http_status = 403


class NotARecipient(AccessDenied):
    """None of an envelope's recipient stanzas is addressed to the keys at hand."""


class WrongPassphrase(AccessDenied):
    """A keystore could not be unlocked with the passphrase given."""


class ReplayDetected(AccessDenied):
    """A signed request was seen before, or is outside its validity window."""

    http_status = 409


class NotFound(ScanSealError):
    """A named thing (identity, record, object) does not exist."""

    exit_code = 6
    http_status = 404


class StorageUnavailable(ScanSealError):
    """No storage node could serve or accept the request; nothing was lost locally."""

    exit_code = 5
    http_status = 503


class LedgerUnavailable(ScanSealError):
    """The ledger could not be reached or did not confirm in time."""

    exit_code = 5
    http_status = 503


class GatewayUnavailable(ScanSealError):
    """A gateway could not be reached, or answered with something that is not its protocol."""

    exit_code = 5
    http_status = 502


__all__ = [
    "AccessDenied",
    "GatewayUnavailable",
    "IntegrityError",
    "InvalidInput",
    "LedgerUnavailable",
    "NotARecipient",
    "NotFound",
    "ReplayDetected",
    "ScanSealError",
    "StorageUnavailable",
    "Unreadable",
    "WrongPassphrase",
]
