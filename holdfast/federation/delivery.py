"""Delivering one activity to one inbox: a signed POST, the way Mastodon expects it."""

from __future__ import annotations

from typing import Any

import httpx

from holdfast.federation.documents import ACTIVITY_JSON
from holdfast.federation.errors import FederationError
from holdfast.federation.fetch import USER_AGENT
from holdfast.federation.netguard import check_url


class DeliveryFailed(FederationError):
    """The inbox did not take the activity. `final` when retrying cannot help."""

    def __init__(
        self, detail: str, *, final: bool = False, retry_after: float | None = None
    ) -> None:
        super().__init__(detail)
        self.final = final
        self.retry_after = retry_after


async def deliver(client: httpx.AsyncClient, federation: Any, inbox: str, body: bytes) -> int:
    """POST `body` to `inbox`, signed with draft-cavage rsa-sha256 and a Digest header."""
    check_url(inbox)
    headers = {
        "Content-Type": ACTIVITY_JSON,
        "Accept": ACTIVITY_JSON,
        "User-Agent": USER_AGENT,
    }
    headers.update(federation.sign("POST", inbox, body))
    try:
        response = await client.post(inbox, content=body, headers=headers)
    except httpx.HTTPError as exc:
        raise DeliveryFailed(f"POST {inbox} failed: {exc}") from exc
    status = response.status_code
    if 200 <= status < 300:
        return status
    if status in (408, 429) or status >= 500:
        after = response.headers.get("retry-after", "")
        raise DeliveryFailed(
            f"{inbox} answered {status}",
            retry_after=float(after) if after.isdigit() and int(after) < 86400 else None,
        )
    raise DeliveryFailed(f"{inbox} refused the activity with {status}", final=True)
