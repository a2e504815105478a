"""FediTest's WebFinger server test plan against a real instance served over TLS.

FediTest (PyPI `feditest`) is the fediverse's conformance tester. Its WebFinger server
plan lives in the `feditest-tests-fediverse` repository, which is not published on PyPI;
each check below is that plan's test of the same name, run through FediTest's own
in-process client (`Imp`: its HTTP requests, its WebFinger URI construction, its JRD
validator `ClaimedJrd` and its link-subset matcher), against an instance served by
uvicorn with a self-signed certificate on 127.0.0.1.

FediTest names servers by bare hostname (always https on port 443); its client code
takes `host:port` from the `acct:` URI, so the instance runs on its own port instead.

Left out, because they need a public TLS deployment (and say nothing about holdfast):

- `4__3_only_returns_jrd_in_response_to_https_requests::does_not_return_jrd_in_response_to_http`
  queries `http://HOST/.well-known/webfinger` on port 80 and expects no JRD. On a real
  deployment port 80 belongs to the TLS-terminating front end (which redirects to https);
  an instance on a loopback port has no port-80 listener to ask.
- `4__3_only_returns_jrd_in_response_to_https_requests::uses_valid_https_certificate`
  requires a certificate a public CA issued for a public name, which a loopback
  address cannot have.
- `4_1__2_parameter_ordering_not_significant` is an empty placeholder in the plan.
"""

from __future__ import annotations

import json
import secrets
import urllib.parse
from collections.abc import Callable, Iterator
from json import JSONDecodeError
from pathlib import Path
from typing import Any

import pytest
from feditest.nodedrivers import NodeConfiguration
from feditest.nodedrivers.imp import Imp, ImpInProcessNodeDriver
from feditest.protocols.web.diag import HttpResponse
from feditest.protocols.webfinger.diag import ClaimedJrd
from feditest.protocols.webfinger.utils import (
    construct_webfinger_uri_for,
    link_subset_or_equal_to,
    wf_error,
)
from feditest.utils import FEDITEST_VERSION

from tests.federation.interop.instances import InstanceThread
from tests.federation.interop.tls import self_signed

pytestmark = [pytest.mark.interop, pytest.mark.slow]

JRD = "application/jrd+json"
KNOWN_RELS = ["http://webfinger.net/rel/profile-page", "self"]
UNKNOWN_RELS = ["something-else"]


@pytest.fixture
def served(make_settings: Callable[..., Any], tmp_path: Path) -> Iterator[InstanceThread]:
    tls = self_signed(tmp_path / "tls", "localhost")
    with InstanceThread(make_settings, name="holdfast", tls=tls, hostname="localhost") as node:
        yield node


def imp() -> Imp:
    config = NodeConfiguration(ImpInProcessNodeDriver(), "Imp", FEDITEST_VERSION, None)
    return Imp("client", config, None)


def is_jrd(content_type: str | None) -> bool:
    return content_type is not None and (content_type == JRD or content_type.startswith(JRD + ";"))


def claims_a_jrd(payload: bytes | None) -> bool:
    """The plan's check that a response is *not* a JRD: parsing or validating must fail."""
    try:
        ClaimedJrd.create_and_validate(payload)  # type: ignore[arg-type]
    except ExceptionGroup as group:
        if all(isinstance(e, (RuntimeError, JSONDecodeError)) for e in group.exceptions):
            return False
        raise
    except (RuntimeError, JSONDecodeError):
        return False
    return True


def run_plan(node: InstanceThread) -> dict[str, str]:
    """Every check of the plan; returns the failures by test name."""
    client = imp()
    host = node.host
    account = f"acct:{node.name}@{host}"
    missing = f"acct:nobody-{secrets.token_hex(4)}@{host}"
    failures: dict[str, str] = {}

    def get(url: str) -> HttpResponse:
        response = client.http_get(url).response
        assert response is not None
        return response

    def check(name: str, ok: bool, detail: str) -> None:
        if not ok:
            failures[name] = detail

    # 4_2__2_perform_query::normal_query
    found = client.diag_perform_webfinger_query(account)
    check("normal_query", not found.exceptions and found.jrd is not None, wf_error(found))
    if found.jrd is not None:
        links = json.loads(found.jrd.as_json_string()).get("links") or []
        self_links = [link for link in links if link.get("rel") == "self"]
        check(
            "normal_query (self link is the actor)",
            [link.get("href") for link in self_links] == [node.actor_url],
            json.dumps(self_links),
        )

    # 4__2_returns_valid_jrd::returns_valid_jrd
    # 4_2__9_content_type::returns_jrd_in_response_to_https
    url = construct_webfinger_uri_for(account)
    response = get(url)
    content_type = response.content_type()
    check("returns_valid_jrd (status)", response.http_status == 200, str(response.http_status))
    check("returns_jrd_in_response_to_https", is_jrd(content_type), str(content_type))
    check("returns_valid_jrd", claims_a_jrd(response.payload), str(response.payload)[:300])

    # 4_2__3_requires_resource_uri
    without = get(url[: url.find("?resource=")])
    check("requires_resource_uri_http_status", without.http_status == 400, str(without.http_status))
    check(
        "requires_resource_uri_jrd", not is_jrd(without.content_type()), str(without.content_type())
    )
    check("requires_resource_uri_jrd (payload)", not claims_a_jrd(without.payload), "a JRD")

    # 4_2__4_do_not_accept_malformed_resource_parameters
    no_scheme = get(f"https://{host}/.well-known/webfinger?resource={account.replace('acct:', '')}")
    check(
        "requires_valid_resource_uri_http_status",
        no_scheme.http_status == 400,
        str(no_scheme.http_status),
    )
    check("requires_valid_resource_uri_jrd", not claims_a_jrd(no_scheme.payload), "a JRD")
    double = get(f"https://{host}/.well-known/webfinger?resource=={urllib.parse.quote(account)}")
    check("double_equals_http_status", double.http_status == 400, str(double.http_status))
    check("double_equals_jrd", not claims_a_jrd(double.payload), "a JRD")

    # 4_2__5_status_404_for_nonexisting_resources
    nobody = get(construct_webfinger_uri_for(missing))
    check(
        "status_404_for_nonexisting_resources", nobody.http_status == 404, str(nobody.http_status)
    )

    # 4_5__1_any_uri_scheme_for_resource_identifiers
    for resource in ["mailto:abc@def.com", f"foo://{host}"]:
        other = get(f"https://{host}/.well-known/webfinger?resource={urllib.parse.quote(resource)}")
        check(
            f"any_uri_scheme_for_resource_identifiers ({resource})",
            other.http_status == 404,
            str(other.http_status),
        )

    # 4__1_accepts_all_link_rels_in_query: known, unknown, and combined rels
    combos = [[rel] for rel in KNOWN_RELS + UNKNOWN_RELS]
    combos += [
        [a, b] if n % 2 else [b, a]
        for n, (a, b) in enumerate(
            (known, unknown) for known in KNOWN_RELS for unknown in UNKNOWN_RELS
        )
    ]
    for rels in combos:
        with_rels = client.diag_perform_webfinger_query(account, rels)
        try:
            subset = found.jrd is not None and link_subset_or_equal_to(found.jrd).matches(
                with_rels.jrd
            )
        except (KeyError, TypeError) as exc:  # a JRD without links
            subset = False
            with_rels.exceptions.append(exc)
        check(
            f"accepts_link_rels_in_query {rels}",
            not with_rels.exceptions and subset,
            wf_error(with_rels),
        )

    # 4_2__14_must_only_redirect_to_https
    final = found.http_request_response_pair.final_request.parsed_uri.scheme
    check("must_only_redirect_to_https", final == "https", final)

    # 5_1_cors_header_required
    headers = found.http_request_response_pair.response.response_headers
    check("cors_header_required", "access-control-allow-origin" in headers, str(dict(headers)))
    return failures


def test_feditest_webfinger_server_plan(served: InstanceThread) -> None:
    failures = run_plan(served)
    assert failures == {}, "\n".join(f"{name}: {detail}" for name, detail in failures.items())


def test_feditest_flags_a_broken_answer(served: InstanceThread) -> None:
    # The checks can fail: a query for the account at another host is not ours (404), and
    # FediTest's client reports the wrong status and content type of that answer.
    client = imp()
    other = f"acct:{served.name}@{served.host}"
    found = client.diag_perform_webfinger_query(other.replace("localhost", "127.0.0.1"))
    kinds = {type(exc).__name__ for exc in found.exceptions}
    assert "WrongHttpStatusError" in kinds
    assert found.http_request_response_pair.response.http_status == 404
