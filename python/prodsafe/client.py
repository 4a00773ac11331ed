"""prodsafe.Redis, the connection everything in prodsafe shares, and
redis_for(), which turns a redis-py client into one."""

from prodsafe._adapt import redis_for
from prodsafe._prodsafe import Redis

__all__ = ["Redis", "redis_for"]
