"""redis-py clients for a Sentinel-managed master and for a Redis Cluster,
accepted in place of prodsafe.Redis (prodsafe reads their sentinels or
startup nodes and opens its own connections), on real topologies."""

import time

import redis.cluster
import redis.sentinel

import prodsafe
from prodsafe.testing import RedisCluster, SentinelTopology


def test_a_redis_py_sentinel_master_is_followed_through_a_failover():
    topology = SentinelTopology(replicas=1, sentinels=3)
    try:
        sentinels = [tuple(e.split(":")) for e in topology.sentinel_endpoints]
        sentinel = redis.sentinel.Sentinel([(h, int(p)) for h, p in sentinels],
                                           socket_timeout=1.0)
        master = sentinel.master_for(topology.master_name, socket_timeout=1.0)
        adapted = prodsafe.redis_for(master)
        assert adapted.url.startswith("redis-sentinel://")
        adapted.set("k", "before")
        assert master.get("k") == b"before"

        old = topology.master()
        old.kill()
        topology.wait_for_failover(old, timeout=30.0)
        # The client re-resolves the master after its connection breaks.
        deadline = time.monotonic() + 10.0
        while True:
            try:
                adapted.set("k", "after")
                break
            except (prodsafe.StoreUnavailable, prodsafe.ReplyError):
                assert time.monotonic() < deadline, "the client never found the new master"
                time.sleep(0.05)
        assert adapted.get("k") == b"after"
        assert topology.master().port != old.port
    finally:
        del topology


def test_a_redis_py_cluster_client_is_accepted():
    cluster = RedisCluster(masters=3, replicas_per_master=0)
    try:
        first = cluster.node(0)
        client = redis.cluster.RedisCluster(host="127.0.0.1", port=first.port)
        adapted = prodsafe.redis_for(client)
        assert adapted.url.startswith("redis-cluster://")
        for i in range(20):  # keys on every master
            adapted.set(f"key-{i}", str(i))
        assert [client.get(f"key-{i}") for i in range(20)] == [str(i).encode() for i in range(20)]
    finally:
        del cluster
