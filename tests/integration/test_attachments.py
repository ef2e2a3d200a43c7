"""Attachments (the /attachments API, docs/api.md) over real HTTP against the private Redis: the
round trip byte for byte, the per-file and total limits, filenames that try to leave the store, and
ids that are unknown or malformed."""

from __future__ import annotations

import os
import re
import shutil
import threading
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from werkzeug.serving import make_server

from api_shim import create_app
from dispatchyard.clients import redis_client
from dispatchyard.settings import get_settings
from dispatchyard.state import attachments, clock
from tests.support.http import Api

MB = 1024 * 1024
ID = re.compile(r"[0-9a-f]{8}")
NOT_FOUND = {"detail": "Attachment not found"}


def store_root() -> Path:
    return get_settings().data_dir.resolve() / "attachments"


def upload(api, data: bytes, filename: str = "a.bin", content_type: str | None = None):
    part = (filename, data) if content_type is None else (filename, data, content_type)
    return api.post("/attachments", files={"file": part})


def upload_named(api, filename: str, data: bytes):
    """An upload whose filename is sent as an RFC 7578 quoted string, backslashes escaped, so
    the server sees the name exactly (requests would send a bare `\\`, which unquoting drops)."""
    quoted = filename.replace("\\", "\\\\").replace('"', '\\"')
    boundary = "dispatchyard-name-boundary"
    body = (
        (
            f'--{boundary}\r\nContent-Disposition: form-data; name=file; filename="{quoted}"\r\n'
            "Content-Type: text/plain\r\n\r\n"
        ).encode()
        + data
        + f"\r\n--{boundary}--\r\n".encode()
    )
    headers = {"Content-Type": f"multipart/form-data; boundary={boundary}"}
    return api.post("/attachments", data=body, headers=headers)


def stored_ids(root: Path) -> set[str]:
    return {p.name for p in root.iterdir()} if root.exists() else set()


@pytest.fixture
def small_store(tmp_path):
    """A shim with its own attachment limits, data dir and Redis database (db 1 of the private
    server), so its byte total starts at zero whatever other tests uploaded."""
    servers = []

    def make(total_bytes: int, max_bytes: int = 10 * MB):
        base = get_settings()
        settings = base.model_copy(
            update={
                "redis_url": base.redis_url.rsplit("/", 1)[0] + "/1",
                "data_dir": tmp_path / "data",
                "attachment_total_bytes": total_bytes,
                "attachment_max_bytes": max_bytes,
            }
        )
        r = redis_client(settings, max_connections=16)
        r.flushdb()
        server = make_server("127.0.0.1", 0, create_app(settings, r), threaded=True)
        threading.Thread(target=server.serve_forever, daemon=True).start()
        servers.append((server, r))
        return Api(f"http://127.0.0.1:{server.server_port}"), r, tmp_path / "data"

    yield make
    for server, r in servers:
        server.shutdown()
        r.flushdb()


def test_round_trip_byte_for_byte(api, r):
    data = os.urandom(3 * MB + 7)
    resp = upload(api, data, "report.pdf", "application/pdf")
    assert resp.status_code == 200, resp.text
    body = resp.json()
    assert list(body) == ["id", "path", "filename", "size", "content_type"]
    assert ID.fullmatch(body["id"])
    assert body["filename"] == "report.pdf"
    assert body["size"] == len(data)
    assert body["content_type"] == "application/pdf"
    assert body["path"] == str(store_root() / body["id"] / "report.pdf")
    assert Path(body["path"]).read_bytes() == data  # peers on this machine read it by path
    # The record expires with the attachment; its bytes stay reserved until released.
    assert 0 < r.pttl(f"attachment:{body['id']}") <= 24 * 3600 * 1000
    assert r.hget("attachments:sizes", body["id"]) == str(len(data))

    got = api.get(f"/attachments/{body['id']}")
    assert got.status_code == 200
    assert got.content == data
    assert got.headers["Content-Type"] == "application/pdf"
    assert got.headers["Content-Disposition"].startswith("attachment;")
    assert "report.pdf" in got.headers["Content-Disposition"]
    assert got.headers["X-Content-Type-Options"] == "nosniff"

    # Every upload gets its own random id, even for the same name and bytes.
    again = upload(api, data, "report.pdf", "application/pdf").json()
    assert again["id"] != body["id"]


def test_without_a_content_type_downloads_as_octet_stream(api):
    data = bytes(range(256)) * 4
    body = upload(api, data, "blob").json()
    assert body["content_type"] is None
    got = api.get(f"/attachments/{body['id']}")
    assert got.content == data
    assert got.headers["Content-Type"] == "application/octet-stream"


def test_ten_mb_is_allowed_and_more_is_413(api):
    # The shim's ordinary body cap is far lower; the route raises it for attachments only.
    assert get_settings().max_body_bytes < 10 * MB
    data = os.urandom(10 * MB)
    resp = upload(api, data, "exact.bin")
    assert resp.status_code == 200, resp.text
    assert api.get(f"/attachments/{resp.json()['id']}").content == data

    r = redis_client(get_settings())
    before_bytes, before_ids = attachments.bytes_reserved(r), stored_ids(store_root())
    # One byte over (inside the multipart allowance, so the file itself is measured), and a
    # body announced far over the cap (refused before it is read).
    for size in (10 * MB + 1, 11 * MB):
        resp = upload(api, b"x" * size, "big.bin")
        assert resp.status_code == 413
        assert resp.json() == {"detail": "File too large (max 10MB)"}
    assert attachments.bytes_reserved(r) == before_bytes
    assert stored_ids(store_root()) == before_ids


def test_chunked_upload_over_the_limit_is_413(api):
    """No Content-Length to refuse up front: the cap applies while werkzeug reads."""
    boundary = "dispatchyard-test-boundary"

    def body():
        yield (
            f"--{boundary}\r\nContent-Disposition: form-data; name=file; filename=big.bin\r\n"
            "Content-Type: application/octet-stream\r\n\r\n"
        ).encode()
        for _ in range(11):
            yield b"y" * MB
        yield f"\r\n--{boundary}--\r\n".encode()

    resp = api.post(
        "/attachments",
        data=body(),
        headers={"Content-Type": f"multipart/form-data; boundary={boundary}"},
    )
    assert resp.status_code == 413
    assert resp.json() == {"detail": "File too large (max 10MB)"}


def test_missing_file_field_is_422_like_fastapi(api):
    missing = [{"loc": ["body", "file"], "msg": "Field required", "type": "missing"}]
    resp = api.post("/attachments", files={"other": ("a.txt", b"hi")})
    assert resp.status_code == 422 and resp.json() == {"detail": missing}
    resp = api.post("/attachments")
    assert resp.status_code == 422 and resp.json() == {"detail": missing}
    resp = api.post("/attachments", json={"file": "hi"})
    assert resp.status_code == 422 and resp.json() == {"detail": missing}
    resp = api.post("/attachments", data={"file": "not a file"})
    assert resp.status_code == 422
    assert resp.json()["detail"][0]["loc"] == ["body", "file"]
    assert resp.json()["detail"][0]["type"] == "value_error"


@pytest.mark.parametrize(
    ("filename", "kept_as"),
    [
        ("../../etc/passwd", "passwd"),
        ("..\\..\\windows\\win.ini", "win.ini"),
        ("C:\\Users\\x\\..\\boot.ini", "boot.ini"),
        ("/etc/cron.d/evil", "evil"),
        ("..", "file.bin"),
        ("a/../..", "file.bin"),
        ("résumé\u202etxt.exe", "résumétxt.exe"),  # no right-to-left override to fool a reader
    ],
)
def test_a_path_in_the_filename_stays_inside_the_store(api, filename, kept_as):
    data = b"payload for " + filename.encode()
    resp = upload_named(api, filename, data)
    assert resp.status_code == 200, resp.text
    body = resp.json()
    assert body["filename"] == kept_as
    root = store_root()
    path = Path(body["path"])
    assert path == root / body["id"] / kept_as
    assert path.resolve().parent == (root / body["id"]).resolve()
    assert path.read_bytes() == data
    assert sorted(p.name for p in path.parent.iterdir()) == [kept_as]  # no temporary left
    assert not (get_settings().data_dir / "etc").exists()
    assert api.get(f"/attachments/{body['id']}").content == data


def test_a_long_filename_is_shortened_keeping_its_extension(api):
    body = upload(api, b"x", "n" * 400 + ".txt").json()
    assert body["filename"].endswith(".txt")
    assert len(body["filename"].encode()) <= 200
    assert Path(body["path"]).is_file()


def test_unknown_id_is_404(api):
    resp = api.get("/attachments/0badf00d")
    assert resp.status_code == 404
    assert resp.json() == NOT_FOUND


def test_malformed_ids_are_404_before_redis_or_the_disk(api, r, monkeypatch):
    # A record and a file planted under an id that breaks the pattern are never served ...
    planted = store_root() / "ABCDEF12"
    planted.mkdir(parents=True, exist_ok=True)
    (planted / "secret.txt").write_text("secret")
    r.hset("attachment:ABCDEF12", mapping={"filename": "secret.txt", "expires_ms": 2**62})

    # ... and neither Redis nor the file system is asked: both raise if they are (a 500).
    class Untouchable:
        def __getattr__(self, name):
            raise AssertionError(f"store.{name} called for a malformed id")

    def no_paths(*args, **kwargs):
        raise AssertionError("the file system was touched for a malformed id")

    monkeypatch.setattr(attachments, "store", Untouchable())
    monkeypatch.setattr(attachments, "_directory", no_paths)
    try:
        for bad in ("ABCDEF12", "abc", "0123456789", "abcdefg1", "...", "a%00bcdefg", "%2E%2E"):
            resp = api.get(f"/attachments/{bad}")
            assert resp.status_code == 404, bad
            assert resp.json() == NOT_FOUND, bad
        # A slash, even encoded, never reaches the route at all (nor does a bare `..`, which
        # the client resolves away).
        for bad in ("..%2F..%2Fetc%2Fpasswd", "%2E%2E%2F%2E%2E%2Fetc"):
            assert api.get(f"/attachments/{bad}").status_code == 404, bad
    finally:
        r.delete("attachment:ABCDEF12")
        shutil.rmtree(planted)


def test_507_when_the_total_would_pass_the_cap(small_store):
    api, r, data_dir = small_store(total_bytes=10_000, max_bytes=4_000)
    first = upload(api, b"a" * 4_000).json()
    upload(api, b"b" * 4_000).raise_for_status()
    resp = upload(api, b"c" * 4_000)
    assert resp.status_code == 507
    detail = resp.json()["detail"]
    assert detail.startswith("Attachments directory would exceed cap (")
    assert detail.endswith("Wait for the 24h TTL to clear older files.")
    assert attachments.bytes_reserved(r) == 8_000
    assert len(stored_ids(data_dir / "attachments")) == 2
    upload(api, b"d" * 2_000).raise_for_status()  # exactly at the cap fits
    assert attachments.bytes_reserved(r) == 10_000
    assert upload(api, b"e").status_code == 507

    # A day later the first ones have expired: they are gone at once, and the next upload
    # gives their bytes back and deletes their files.
    clock.advance(24 * 3600 + 1)
    assert api.get(f"/attachments/{first['id']}").json() == NOT_FOUND
    fresh = upload(api, b"f" * 4_000)
    assert fresh.status_code == 200, fresh.text
    assert attachments.bytes_reserved(r) == 4_000
    assert stored_ids(data_dir / "attachments") == {fresh.json()["id"]}


def test_concurrent_uploads_never_pass_the_cap(small_store):
    api, r, data_dir = small_store(total_bytes=10 * 1_000, max_bytes=1_000)
    with ThreadPoolExecutor(8) as pool:
        codes = list(pool.map(lambda i: upload(api, bytes([i]) * 1_000).status_code, range(24)))
    assert codes.count(200) == 10 and codes.count(507) == 14
    assert attachments.bytes_reserved(r) == 10_000
    assert len(stored_ids(data_dir / "attachments")) == 10
