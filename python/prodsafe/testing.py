"""Helpers for users' own tests.

    from prodsafe.testing import RedisServer

    with RedisServer() as server:
        redis = prodsafe.Redis(server.url)

RedisServer starts a private redis-server (Debian's redis-server package) on
a free loopback port in a temporary directory, and kills it and removes the
directory when closed. It never touches a server it did not start. SentinelTopology (a master,
replicas and sentinels) and RedisCluster (masters and replicas) are made the
same way, for tests of code that runs against those topologies.
"""

from prodsafe._prodsafe import RedisCluster, RedisServer, SentinelTopology

__all__ = ["RedisServer", "SentinelTopology", "RedisCluster"]
