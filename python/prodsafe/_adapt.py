"""Accepting redis-py clients wherever prodsafe asks for a connection.

prodsafe does not talk through redis-py: it reads the client's settings (host
and port or unix path, db, user, password, TLS files, timeouts; the sentinels
and service name of a Sentinel-managed client; the startup nodes of a
RedisCluster) and opens its own pooled connections with them. One
prodsafe.Redis is made per redis-py client and kept while that client lives.
"""

from __future__ import annotations

import sys
import threading
import weakref
from typing import Any

from prodsafe._prodsafe import Redis
from prodsafe.errors import InvalidArgument, WrongType

_cache: "weakref.WeakKeyDictionary[Any, Redis]" = weakref.WeakKeyDictionary()
_lock = threading.Lock()


def redis_for(obj: Any) -> Redis:
    """The prodsafe.Redis for `obj`: itself, or the one made for a redis-py client."""
    if isinstance(obj, Redis):
        return obj
    try:
        with _lock:
            cached = _cache.get(obj)
    except TypeError:  # not weak-referenceable, so not a redis-py client
        cached = None
    if cached is not None:
        return cached
    url, options = describe(obj)
    client = Redis(url, **options)
    try:
        with _lock:
            _cache.setdefault(obj, client)
            return _cache[obj]
    except TypeError:
        return client


def _host(host: str) -> str:
    return f"[{host}]" if ":" in host and not host.startswith("[") else host


def _timeouts(kwargs: dict, options: dict) -> None:
    # redis-py's None means "wait forever"; prodsafe keeps its own default
    # then, so a paused server cannot hang a worker.
    if kwargs.get("socket_timeout") is not None:
        options["command_timeout"] = float(kwargs["socket_timeout"])
    if kwargs.get("socket_connect_timeout") is not None:
        options["connect_timeout"] = float(kwargs["socket_connect_timeout"])


def _credentials(kwargs: dict, options: dict) -> None:
    if kwargs.get("username"):
        options["user"] = str(kwargs["username"])
    if kwargs.get("password"):
        options["password"] = str(kwargs["password"])


def _tls(kwargs: dict, options: dict) -> None:
    import ssl

    tls: dict[str, Any] = {"enabled": True}
    if kwargs.get("ssl_ca_certs"):
        tls["ca_file"] = str(kwargs["ssl_ca_certs"])
    if kwargs.get("ssl_ca_path"):
        tls["ca_dir"] = str(kwargs["ssl_ca_path"])
    if kwargs.get("ssl_certfile"):
        tls["cert_file"] = str(kwargs["ssl_certfile"])
    if kwargs.get("ssl_keyfile"):
        tls["key_file"] = str(kwargs["ssl_keyfile"])
    reqs = kwargs.get("ssl_cert_reqs", "required")
    if reqs in ("none", ssl.CERT_NONE) or reqs is None:
        tls["verify_peer"] = False
    options["tls"] = tls


def _refuse(obj: Any) -> WrongType:
    return WrongType(
        f"a Redis connection must be a prodsafe.Redis or a redis-py client "
        f"(redis.Redis, redis.cluster.RedisCluster), not {type(obj).__name__}; "
        f"for tests without Redis use prodsafe.Redis with prodsafe.testing.RedisServer")


def _redis_py_kind(obj: Any) -> str | None:
    """"cluster", "redis", or None when `obj` is not a redis-py client. A
    redis-py client exists only once redis-py is imported, so its classes are
    looked up in sys.modules (prodsafe does not need redis-py)."""
    cluster = sys.modules.get("redis.cluster")
    if cluster is not None and isinstance(obj, getattr(cluster, "RedisCluster", ())):
        return "cluster"
    client = sys.modules.get("redis.client")
    if client is not None and isinstance(obj, getattr(client, "Redis", ())):
        return "redis"
    return None


def describe(obj: Any) -> tuple[str, dict[str, Any]]:
    """(url, options) for prodsafe.Redis from a redis-py client's settings."""
    kind = _redis_py_kind(obj)
    if kind is None:
        raise _refuse(obj)
    pool = getattr(obj, "connection_pool", None)
    nodes_manager = getattr(obj, "nodes_manager", None)
    if kind == "cluster":  # redis.cluster.RedisCluster
        kwargs = dict(getattr(nodes_manager, "connection_kwargs", {}) or {})
        seeds = [f"{_host(n.host)}:{n.port}" for n in nodes_manager.startup_nodes.values()]
        if not seeds:
            raise InvalidArgument("the RedisCluster client names no startup nodes")
        options: dict[str, Any] = {}
        _credentials(kwargs, options)
        _timeouts(kwargs, options)
        connection_class = kwargs.get("connection_class")
        if kwargs.get("ssl") or getattr(connection_class, "__name__", "") == "SSLConnection":
            _tls(kwargs, options)
        return "redis-cluster://" + ",".join(seeds), options
    if pool is None or not isinstance(getattr(pool, "connection_kwargs", None), dict):
        raise _refuse(obj)
    kwargs = dict(pool.connection_kwargs)
    options = {}
    _credentials(kwargs, options)
    _timeouts(kwargs, options)
    db = int(kwargs.get("db", 0) or 0)
    manager = getattr(pool, "sentinel_manager", None)
    if manager is not None:  # redis.sentinel.SentinelConnectionPool
        sentinels = []
        for sentinel in manager.sentinels:
            skw = sentinel.connection_pool.connection_kwargs
            sentinels.append(f"{_host(skw.get('host', '127.0.0.1'))}:{skw.get('port', 26379)}")
        sentinel_kwargs = getattr(manager, "sentinel_kwargs", {}) or {}
        sentinel_options: dict[str, Any] = {}
        if sentinel_kwargs.get("password"):
            sentinel_options["password"] = str(sentinel_kwargs["password"])
        if sentinel_kwargs.get("username"):
            sentinel_options["user"] = str(sentinel_kwargs["username"])
        if sentinel_options:
            options["sentinel"] = sentinel_options
        name = pool.service_name
        return f"redis-sentinel://{','.join(sentinels)}/{db}?master={name}", options
    connection_class = getattr(pool, "connection_class", None)
    class_name = getattr(connection_class, "__name__", "")
    if class_name == "UnixDomainSocketConnection" or "path" in kwargs:
        path = kwargs.get("path")
        if not path:
            raise InvalidArgument("the redis-py client's unix socket has no path")
        return f"unix://{path}?db={db}", options
    host = kwargs.get("host", "localhost") or "localhost"
    port = int(kwargs.get("port", 6379) or 6379)
    if class_name == "SSLConnection":
        _tls(kwargs, options)
    return f"redis://{_host(host)}:{port}/{db}", options
