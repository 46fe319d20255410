"""A property-based run over the OpenAPI document (schemathesis): no request it generates, valid or
not, gets a 5xx or a response the document does not describe (status, content type, headers, body).

Driven through schemathesis' Python API with hypothesis directly (its pytest loader does not run
under this pytest), one operation after another, against the real server."""

from __future__ import annotations

import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)

CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance, response_headers_conformance,
          response_schema_conformance]
EXAMPLES_PER_OPERATION = 60


def test_no_generated_request_gets_a_server_error_or_an_undocumented_answer(api_server, cast, token_for):
    token = token_for(cast.ana)
    schema = schemathesis.openapi.from_url(f"{api_server.base_url}/api/openapi.json")
    failures: dict[str, str] = {}
    calls: dict[str, int] = {}
    for result in schema.get_all_operations():
        operation = result.ok()
        label = f"{operation.method.upper()} {operation.path}"
        calls[label] = 0

        @given(case=operation.as_strategy())
        @settings(max_examples=EXAMPLES_PER_OPERATION, deadline=None, database=None,
                  suppress_health_check=list(HealthCheck))
        def check(case):
            calls[label] += 1
            case.call_and_validate(base_url=api_server.base_url, headers={"Authorization": f"Bearer {token}"},
                                   checks=CHECKS, timeout=15)

        try:
            check()
        except Exception as failure:  # noqa: BLE001 (collected: every operation is tried)
            failures[label] = str(failure)[:3000]
    assert len(calls) >= 11, calls
    assert all(n > 0 for n in calls.values()), calls
    assert not failures, "\n\n".join(f"{label}:\n{text}" for label, text in failures.items())
    assert "Traceback" not in api_server.log, api_server.log[-3000:]
