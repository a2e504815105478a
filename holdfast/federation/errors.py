"""The federation error tree.

Every error a caller may want to handle derives from `FederationError`. Rejections
carry a machine-readable `reason` (an enum) beside the human-readable message, so
routes can map them to HTTP statuses and tests can assert the exact cause.
"""

from __future__ import annotations

import enum


class FederationError(Exception):
    """Base class of every error raised by `holdfast.federation`."""


class KeyFormatError(FederationError):
    """Key material (PEM, multibase, did:key) that cannot be read or is not allowed."""


class Rejection(enum.Enum):
    """Why an incoming request's HTTP signature was refused."""

    UNSIGNED = "unsigned"
    MALFORMED = "malformed"
    TOO_LARGE = "too_large"
    UNSUPPORTED_ALGORITHM = "unsupported_algorithm"
    INSUFFICIENT_COVERAGE = "insufficient_coverage"
    DIGEST_MISMATCH = "digest_mismatch"
    STALE = "stale"
    FUTURE = "future"
    EXPIRED = "expired"
    UNKNOWN_KEY = "unknown_key"
    WEAK_KEY = "weak_key"
    BAD_SIGNATURE = "bad_signature"
    SIGNER_NOT_ACTOR = "signer_not_actor"


class SignatureRejected(FederationError):
    """An incoming request's signature is refused; answer 401 (or 413 when too large)."""

    def __init__(self, reason: Rejection, detail: str) -> None:
        super().__init__(f"{reason.value}: {detail}")
        self.reason = reason
        self.detail = detail

    @property
    def status(self) -> int:
        return 413 if self.reason is Rejection.TOO_LARGE else 401


class ProofFailure(enum.Enum):
    """Why an object's integrity proof was refused."""

    MISSING = "missing"
    MALFORMED = "malformed"
    TOO_LARGE = "too_large"
    UNSUPPORTED = "unsupported"
    CONTEXT_MISMATCH = "context_mismatch"
    UNKNOWN_METHOD = "unknown_method"
    KEY_MISMATCH = "key_mismatch"
    EXPIRED = "expired"
    INVALID_SIGNATURE = "invalid_signature"
    OWNER_MISMATCH = "owner_mismatch"


class ProofRejected(FederationError):
    """An object's FEP-8b32 proof is missing, malformed or does not verify."""

    def __init__(self, reason: ProofFailure, detail: str) -> None:
        super().__init__(f"{reason.value}: {detail}")
        self.reason = reason
        self.detail = detail


class ProofCreationError(FederationError):
    """A proof cannot be made for this document (already signed, not canonicalisable)."""


class DocumentError(FederationError):
    """Input that cannot become a federation document."""


class WebFingerError(DocumentError):
    """A WebFinger query that is malformed (status 400) or names no one here (404)."""

    def __init__(self, status: int, detail: str) -> None:
        super().__init__(detail)
        self.status = status
        self.detail = detail


class UnsafeAddressError(FederationError):
    """An outbound request whose host is, or resolves to, a refused address."""


class FetchError(FederationError):
    """An outbound fetch that failed, answered an error, or sent too much."""
