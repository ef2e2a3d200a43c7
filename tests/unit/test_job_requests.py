"""The create-request rules of /jobs, pure: defaults of execution and what is refused."""

from __future__ import annotations

import pytest

from api_shim.daemon.job_requests import CreateBody, check_create, fields_of, request_of
from api_shim.errors import ApiError

BACKENDS = ["claude-code", "codex"]


def execution(**body) -> dict:
    parsed = CreateBody(**body)
    return request_of(parsed, None)["execution"]


def test_a_path_and_backend_without_a_peer_run_per_fire_fresh_or_resumed_when_recurring():
    one_shot = execution(title="t", path="/w", backend="claude-code")
    assert one_shot["process_scope"] == "per_fire" and one_shot["continuity"] == "fresh"
    recurring = execution(title="t", path="/w", backend="claude-code", cron="@hourly")
    assert recurring["continuity"] == "resume"
    with_peer = execution(title="t", path="/w", backend="claude-code", assigned_peer_id="p")
    assert "process_scope" not in with_peer


def test_prompt_comes_from_the_file_the_body_or_the_title():
    assert execution(title="t")["prompt"] == {"body": "t", "source": "title"}
    assert execution(title="t", prompt="p")["prompt"] == {"body": "p", "source": "inline"}
    from_file = request_of(CreateBody(title="t", prompt_file="/p"), "text")["execution"]
    assert from_file["prompt"] == {"body": "text", "source": "file", "source_path": "/p"}


def test_per_fire_spelled_with_a_dash_is_read_and_unknown_scopes_are_refused():
    assert execution(process_scope="per-fire")["process_scope"] == "per_fire"
    with pytest.raises(ApiError) as refused:
        execution(process_scope="forever")
    assert (refused.value.status, refused.value.message) == (
        400,
        "process_scope must be one of: per_fire, persistent",
    )


@pytest.mark.parametrize(
    ("body", "status", "message"),
    [
        ({"backend": "vim"}, 422, "invalid backend"),
        ({"due_at": "2027-01-01T00:00:00Z", "cron": "@daily"}, 400, "provide due_at or cron"),
        ({"deadline_at": "soon"}, 400, "deadline_at must be an ISO-8601 timestamp"),
        ({"overlap": "queue"}, 400, "overlap must be one of"),
        ({"cron": "61 * * * *"}, 400, ""),
        ({"timezone": "Mars/Olympus"}, 400, ""),
    ],
)
def test_refused_create_requests(body, status, message):
    with pytest.raises(ApiError) as refused:
        check_create(CreateBody(title="t", **body), BACKENDS)
    assert refused.value.status == status
    assert refused.value.message.startswith(message)


def test_fields_keep_ownership_and_drop_execution_inputs():
    body = CreateBody(title="t", circle="c", path="/w", backend="codex", prompt="p")
    fields = fields_of(body, request_of(body, None))
    assert fields["circle"] == "c" and fields["request"]["execution"]["target"]["path"] == "/w"
    assert not {"path", "backend", "prompt", "prompt_file"} & set(fields)
