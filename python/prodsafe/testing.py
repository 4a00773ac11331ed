"""Helpers for users' own tests.

    from prodsafe.testing import RedisServer

    with RedisServer() as server:
        redis = prodsafe.Redis(server.url)

RedisServer starts a private redis-server (Debian's redis-server package) on
a free loopback port in a temporary directory, and kills it and removes the
directory when closed. It never touches a server it did not start.
"""

from prodsafe._prodsafe import RedisServer

__all__ = ["RedisServer"]
