"""Jobs written before the search indexes existed are filed in them by the retention sweep, a
batch a run, once: the real sweep task on the suite's Redis, then the list over HTTP."""

from __future__ import annotations

import secrets

from dispatchyard.state import keys
from tasks import retention as retention_task
from tests.support.waits import wait_for

FUTURE = "2999-01-01T00:00:00Z"


def listed(api, **params) -> list[str]:
    resp = api.get("/jobs", params={"view": "summary", "limit": 50, **params})
    assert resp.status_code == 200, resp.text
    return [j["job_id"] for j in resp.json()["work"]]


def test_the_sweep_files_jobs_older_than_the_search_indexes(api, r, tmp_path):
    tag = secrets.token_hex(4)
    body = {"title": f"legacy {tag} report", "prompt": "p", "path": str(tmp_path)}
    job_id = api.post("/jobs", json={**body, "backend": "codex", "due_at": FUTURE}).json()["job_id"]
    assert listed(api, q=tag, backend="codex") == [job_id]
    # As the store was before the indexes: the job in none of them, the filing not yet begun.
    fields = [f for f in r.hkeys(keys.job(job_id)) if f.startswith("term:")]
    for field in fields:
        _, name, value = field.split(":", 2)
        r.zrem(keys.jobs_by(name, value), job_id)
    r.hdel(keys.job(job_id), *fields)
    r.delete(keys.JOBS_SEARCH_BACKFILL)
    assert listed(api, q=tag) == []

    def filed() -> bool:
        retention_task.sweep()
        return r.get(keys.JOBS_SEARCH_BACKFILL) == "done"

    wait_for(filed, timeout=30, message="the search backfill to finish")
    assert listed(api, q=tag, backend="codex") == [job_id]
    terms = {f for f in r.hkeys(keys.job(job_id)) if f.startswith("term:")}
    assert terms == {f"term:word:{w}" for w in ("legacy", tag, "report")} | {"term:backend:codex"}
    assert all(r.zscore(f"jobs:by:{t[5:]}", job_id) is not None for t in terms)
