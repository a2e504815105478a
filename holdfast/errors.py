"""The exceptions of the domain layer, and how they map to HTTP.

    HoldfastError                 anything the domain refuses, with a message for people
    ├── InvalidInput              422  the request is malformed or a value is not allowed
    ├── NotFound                  404  no such thing (or not visible to this account)
    ├── Conflict                  409  it already exists (duplicate slug, duplicate infohash)
    ├── PayloadTooLarge           413  the body or file is over a limit
    ├── NotAuthenticated          401  log in or send a token
    ├── PermissionDenied          403  logged in, but not allowed
    ├── Gone                      410  it was removed; a tombstone remains
    └── RateLimited               429  too many attempts; try again later

Every JSON error leaves the API in one envelope: {"ok": false, "error": "...", "status": N}
(plus "fields" for per-field validation errors). Services raise these; routes never build
error responses by hand.
"""

from __future__ import annotations


class HoldfastError(Exception):
    status: int = 400

    def __init__(self, message: str, *, fields: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.fields = fields or {}


class InvalidInput(HoldfastError):
    status = 422


class NotFound(HoldfastError):
    status = 404


class Conflict(HoldfastError):
    status = 409


class PayloadTooLarge(HoldfastError):
    status = 413


class NotAuthenticated(HoldfastError):
    status = 401


class PermissionDenied(HoldfastError):
    status = 403


class Gone(HoldfastError):
    status = 410


class RateLimited(HoldfastError):
    status = 429

    def __init__(self, message: str, *, retry_after: int) -> None:
        super().__init__(message)
        self.retry_after = retry_after
