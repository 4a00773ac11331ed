"""prodsafe.Redis, redis-py clients accepted in its place, and the errors."""

import datetime
import os
import pickle

import pytest
import redis as redis_py

import prodsafe
from prodsafe.testing import RedisServer


def test_commands_round_trip(redis):
    assert redis.ping() is True
    redis.set("greeting", "hello")
    assert redis.get("greeting") == b"hello"
    assert redis.execute_command("INCRBY", "n", 5) == 5
    assert redis.execute_command("SET", "k", b"\x00\xff") == "OK"
    assert redis.execute_command("GET", "k") == b"\x00\xff"
    assert redis.execute_command("LRANGE", "missing", 0, -1) == []
    assert redis.delete("k") == 1
    assert redis.get("k") is None


def test_set_with_a_ttl_in_seconds_or_a_timedelta(redis):
    redis.set("a", "1", ex=30)
    redis.set("b", "1", ex=datetime.timedelta(seconds=30))
    assert 0 < redis.execute_command("PTTL", "a") <= 30_000
    assert 0 < redis.execute_command("PTTL", "b") <= 30_000


def test_an_error_reply_raises_reply_error_with_the_server_text(redis):
    redis.execute_command("LPUSH", "list", "x")
    with pytest.raises(prodsafe.ReplyError) as caught:
        redis.execute_command("GET", "list")
    assert caught.value.prefix == "WRONGTYPE"
    assert caught.value.server_message.startswith("WRONGTYPE")
    assert isinstance(caught.value, prodsafe.Error)
    assert caught.value.retryable is False


def test_key_prefix_and_url_redaction(redis_server):
    client = prodsafe.Redis(redis_server.url, key_prefix="tenant:", password="s3cret",
                            user=None)
    assert client.key("x") == "tenant:x"
    url = f"redis://:pa55@127.0.0.1:{redis_server.port}/0"
    assert "pa55" not in prodsafe.Redis(url).url
    assert "pa55" not in repr(prodsafe.Redis(url))


def test_an_unreachable_server_is_store_unavailable_and_retryable(redis_server):
    port = redis_server.port
    redis_server.kill()
    client = prodsafe.Redis(f"redis://127.0.0.1:{port}", connect_timeout=0.2,
                            reconnect_backoff_initial=0)
    with pytest.raises(prodsafe.StoreUnavailable) as caught:
        client.ping()
    assert caught.value.retryable is True
    assert caught.value.code in ("StoreUnavailable", "Timeout")


def test_a_paused_server_times_out_instead_of_hanging(redis_server):
    client = prodsafe.Redis(redis_server.url, command_timeout=0.2)
    client.ping()
    redis_server.pause()
    try:
        with pytest.raises(prodsafe.Timeout):
            client.execute_command("GET", "x")
    finally:
        redis_server.resume()


@pytest.mark.parametrize("url", ["", "http://x", "redis://host:99999", "redis://[::1"])
def test_a_bad_url_is_invalid_argument(url):
    with pytest.raises(prodsafe.InvalidArgument) as caught:
        prodsafe.Redis(url)
    assert isinstance(caught.value, ValueError)


def test_bad_options_name_the_option():
    with pytest.raises(prodsafe.InvalidArgument, match="unknown option 'timeout'"):
        prodsafe.Redis("redis://127.0.0.1", timeout=1)
    with pytest.raises(prodsafe.WrongType, match="pool_size must be an int, not str"):
        prodsafe.Redis("redis://127.0.0.1", pool_size="8")
    with pytest.raises(TypeError):
        prodsafe.Redis("redis://127.0.0.1", command_timeout="1s")
    with pytest.raises(prodsafe.InvalidArgument, match="command_timeout"):
        prodsafe.Redis("redis://127.0.0.1", command_timeout=-1)
    with pytest.raises(prodsafe.InvalidArgument):
        prodsafe.Redis("redis://127.0.0.1", command_timeout=float("nan"))
    with pytest.raises(prodsafe.InvalidArgument, match="pool_size"):
        prodsafe.Redis("redis://127.0.0.1", pool_size=0)
    with pytest.raises(prodsafe.InvalidArgument, match="unknown tls setting 'ca'"):
        prodsafe.Redis("rediss://127.0.0.1", tls={"ca": "x"})
    with pytest.raises(prodsafe.WrongType):
        prodsafe.Redis(42)


def test_wrong_command_argument_types_raise_wrong_type(redis):
    with pytest.raises(prodsafe.WrongType, match="argument 1"):
        redis.execute_command("SET", object(), "x")
    with pytest.raises(prodsafe.InvalidArgument):
        redis.execute_command()


def test_a_redis_py_client_is_accepted_with_its_settings(redis_server):
    plain = redis_py.from_url(redis_server.url + "/3")
    adapted = prodsafe.redis_for(plain)
    assert adapted is prodsafe.redis_for(plain)  # one per redis-py client
    adapted.set("where", "db3")
    assert plain.get("where") == b"db3"
    assert redis_py.from_url(redis_server.url + "/0").get("where") is None


def test_a_redis_py_client_with_a_password_and_a_unix_socket():
    with RedisServer(config=["requirepass s3cret"], unix_socket=True) as server:
        tcp = redis_py.Redis(host="127.0.0.1", port=server.port, password="s3cret", db=2,
                             socket_timeout=0.5)
        adapted = prodsafe.redis_for(tcp)
        adapted.set("k", "v")
        assert tcp.get("k") == b"v"
        assert "s3cret" not in adapted.url
        path = server.unix_url[len("unix://"):]
        unix = redis_py.Redis(unix_socket_path=path, password="s3cret", db=2)
        assert prodsafe.redis_for(unix).get("k") == b"v"


def test_anything_else_is_refused_with_a_clear_error():
    from unittest.mock import Mock

    with pytest.raises(prodsafe.WrongType, match="prodsafe.Redis or a redis-py client"):
        prodsafe.redis_for(Mock(spec=[]))
    with pytest.raises(prodsafe.WrongType):
        prodsafe.redis_for("redis://127.0.0.1")


def test_errors_pickle_with_their_attributes():
    error = prodsafe.AlreadyInProgress("busy", key="k", retry_after=1.5)
    copy = pickle.loads(pickle.dumps(error))
    assert type(copy) is prodsafe.AlreadyInProgress
    assert (copy.key, copy.retry_after, copy.retryable, str(copy)) == ("k", 1.5, True, "busy")


def test_a_forked_child_opens_its_own_connections(redis):
    redis.set("before", "fork")
    parent_created = redis.pool_stats()["created"]
    pid = os.fork()
    if pid == 0:  # the child: the parent's pooled socket must not be reused
        code = 1
        try:
            ok = redis.get("before") == b"fork"
            redis.set("child", "wrote")
            code = 0 if ok else 2
        finally:
            os._exit(code)
    _, status = os.waitpid(pid, 0)
    assert os.WEXITSTATUS(status) == 0
    assert redis.get("child") == b"wrote"
    assert redis.pool_stats()["created"] == parent_created  # parent's pool untouched


@pytest.mark.parametrize("command", [["MULTI"], ["SELECT", "1"], ["SUBSCRIBE", "x"]])
def test_commands_that_would_change_a_pooled_connection_are_refused(redis, command):
    with pytest.raises(prodsafe.InvalidArgument, match="would change the pooled connection"):
        redis.execute_command(*command)
    assert redis.ping() is True


def test_the_gil_is_released_while_a_call_waits_on_redis(redis_server):
    import threading
    import time

    client = prodsafe.Redis(redis_server.url, command_timeout=1.0)
    client.ping()
    ticks = []
    done = threading.Event()

    def ticker():
        while not done.is_set():
            ticks.append(time.monotonic())
            time.sleep(0.01)

    redis_server.pause()
    thread = threading.Thread(target=ticker)
    thread.start()
    try:
        start = time.monotonic()
        with pytest.raises(prodsafe.Timeout):
            client.execute_command("GET", "x")
        waited = time.monotonic() - start
    finally:
        done.set()
        thread.join()
        redis_server.resume()
    # The other thread kept running during the whole wait, not only after it.
    during = [t for t in ticks if start < t < start + waited]
    assert waited >= 0.9
    assert len(during) >= 20


def test_a_daemon_thread_inside_a_call_at_interpreter_exit_does_not_crash(redis_server):
    # pybind11 issue #2215: a daemon thread that takes the GIL back while the
    # interpreter finalizes is ended with a forced unwind, which aborted the
    # process when it left a noexcept destructor (py::gil_scoped_release).
    import subprocess
    import sys

    script = f"""
import threading, prodsafe
redis = prodsafe.Redis({redis_server.url!r})
def loop():
    while True:
        redis.ping()
for _ in range(4):
    threading.Thread(target=loop, daemon=True).start()
import time; time.sleep(0.2)
"""
    for _ in range(3):
        done = subprocess.run([sys.executable, "-c", script], capture_output=True, timeout=60)
        assert done.returncode == 0, done.stderr.decode(errors="replace")[-2000:]


def test_a_plain_mock_is_refused_with_wrong_type_not_a_raw_type_error():
    from unittest.mock import MagicMock, Mock

    for fake in (Mock(), MagicMock()):
        with pytest.raises(prodsafe.WrongType, match="prodsafe.Redis or a redis-py client"):
            prodsafe.redis_for(fake)
