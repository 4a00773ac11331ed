"""Fixtures shared by the Python tests: private redis-servers started by the
tests themselves (prodsafe.testing.RedisServer), never one they did not start."""

import pytest

import prodsafe
from prodsafe.testing import RedisServer


@pytest.fixture
def redis_server():
    """A fresh redis-server for one test."""
    with RedisServer() as server:
        yield server


@pytest.fixture
def redis(redis_server):
    """A prodsafe.Redis on the test's own server."""
    return prodsafe.Redis(redis_server.url)
