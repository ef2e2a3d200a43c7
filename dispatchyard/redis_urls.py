"""The Redis URL every process is given: a single server (`redis://`, `rediss://`, `unix://`,
read by redis-py and kombu themselves) or a Sentinel-watched master (`sentinel://`, parsed
here), and how a URL is shown without its password."""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import parse_qs, unquote, urlsplit

SENTINEL_PORT = 26379


@dataclass(frozen=True)
class SentinelUrl:
    """`DISPATCHYARD_REDIS_URL=sentinel://[[user]:password@]host[:port][,host[:port]…][/db]
    ?master=NAME[&sentinel_password=…]`: the sentinels to ask (port 26379 by default), the
    name of the master they watch, the database, and the master's credentials (the sentinels'
    own password, if they have one, is `sentinel_password`)."""

    sentinels: tuple[tuple[str, int], ...]
    master: str
    db: int = 0
    username: str | None = None
    password: str | None = None
    sentinel_password: str | None = None


def sentinel_url(url: str) -> SentinelUrl | None:
    """The parsed `sentinel://` setting; None for a URL naming one server (`redis://`,
    `rediss://`, `unix://`), which redis-py and kombu read themselves."""
    parts = urlsplit(url)
    if parts.scheme != "sentinel":
        return None
    userinfo, _, hosts = parts.netloc.rpartition("@")
    username, _, password = userinfo.partition(":")
    sentinels = tuple(_host_port(item.strip()) for item in hosts.split(",") if item.strip())
    if not sentinels:
        raise ValueError(f"{url!r}: no sentinel host")
    db = parts.path.strip("/") or "0"
    if not db.isdigit():
        raise ValueError(f"{url!r}: the path is the database number, got {db!r}")
    query = {k: v[-1] for k, v in parse_qs(parts.query, keep_blank_values=True).items()}
    unknown = set(query) - {"master", "sentinel_password"}
    if unknown:
        raise ValueError(f"{url!r}: unknown parameter(s) {sorted(unknown)}")
    if not query.get("master"):
        raise ValueError(f"{url!r}: name the master the sentinels watch with ?master=NAME")
    return SentinelUrl(
        sentinels=sentinels,
        master=query["master"],
        db=int(db),
        username=unquote(username) or None,
        password=unquote(password) or None,
        sentinel_password=query.get("sentinel_password") or None,
    )


def _host_port(item: str) -> tuple[str, int]:
    if item.startswith("["):  # [::1]:26379
        host, _, rest = item[1:].partition("]")
        port = rest.removeprefix(":")
    else:
        host, _, port = item.partition(":")
    if not host or (port and not port.isdigit()):
        raise ValueError(f"bad sentinel address {item!r}")
    return host, int(port or SENTINEL_PORT)


def shown_url(url: str) -> str:
    """The URL with its password replaced by `***`, for messages (secrets never reach output)."""
    parts = urlsplit(url)
    userinfo, at, hosts = parts.netloc.rpartition("@")
    if not at or ":" not in userinfo:
        return url
    user = userinfo.split(":", 1)[0]
    return parts._replace(netloc=f"{user}:***@{hosts}").geturl()
