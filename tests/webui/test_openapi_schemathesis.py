"""Property-based API test: schemathesis generates requests from
/openapi.json and checks every answer -- no 5xx, responses match the schema.

Authenticated: the session cookie and CSRF header of a logged-in admin go
with every generated request. Bounded: a few examples per operation.
"""
from __future__ import annotations

import pytest

schemathesis = pytest.importorskip("schemathesis")
from hypothesis import HealthCheck, given, settings  # noqa: E402
from schemathesis.checks import not_a_server_error  # noqa: E402
from schemathesis.specs.openapi.checks import (  # noqa: E402
    content_type_conformance, response_schema_conformance, status_code_conformance)

from webui.security import SESSION_COOKIE  # noqa: E402
from webui_helpers import login  # noqa: E402

MAX_EXAMPLES = 4
# Operations that would end the fuzzer's own session: checked by test_main.
SKIP = {("POST", "/api/auth/logout"), ("DELETE", "/api/users/{name}")}


def test_api_conforms_to_its_schema(app, client):
    csrf = login(client)
    cookies = {SESSION_COOKIE: client.cookies.get(SESSION_COOKIE)}
    headers = {"X-CSRF-Token": csrf}
    raw = client.get("/openapi.json").json()
    assert len(raw["paths"]) >= 20
    schema = schemathesis.openapi.from_dict(raw)
    schema.app = app
    checks = [not_a_server_error, status_code_conformance, content_type_conformance,
              response_schema_conformance]
    tested = 0
    failures = []
    statuses: dict[int, int] = {}
    for result in schema.get_all_operations():
        operation = result.ok()
        if (operation.method.upper(), operation.path) in SKIP:
            continue

        @given(case=operation.as_strategy())
        @settings(max_examples=MAX_EXAMPLES, deadline=None, database=None,
                  suppress_health_check=list(HealthCheck))
        def run(case):
            response = case.call(headers=headers, cookies=cookies)
            statuses[response.status_code] = statuses.get(response.status_code, 0) + 1
            case.validate_response(response, checks=checks)

        try:
            run()
        except Exception as error:  # collect all, report together
            failures.append(f"{operation.method.upper()} {operation.path}: {error}")
        tested += 1
    assert tested >= 20
    assert not failures, "\n\n".join(failures)
    # The session held: requests were answered, not turned away at the door
    # (401 only comes from the login operation's wrong passwords).
    assert statuses.get(200, 0) > 20 and max(statuses) < 500, statuses
    print("schemathesis status counts:", dict(sorted(statuses.items())))
