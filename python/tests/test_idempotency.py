"""prodsafe.idempotency: the seed's examples, results, exceptions, bad input,
the GIL, the decorator. Races, crashes and async are in the other
test_idempotency_*.py files."""

import datetime
import json
import pickle
import threading
import time

import pytest
import redis as redis_py

import prodsafe
from prodsafe import EffectType, SideEffectWrapper


@pytest.fixture
def wrapper(redis, tmp_path):
    return SideEffectWrapper(redis, journal_directory=str(tmp_path / "journal"))


# --- the seed's examples, verbatim except the import lines -------------------


def test_seed_phase1_usage_example(redis_server, capsys, monkeypatch):
    from prodsafe import wrap_order_placement
    import redis

    # The seed's URL names localhost:6379; send it to the test's own server.
    original = redis.from_url
    monkeypatch.setattr(redis, "from_url", lambda url: original(redis_server.url + "/0"))
    if True:
        # --- the seed, Phase 1 "Usage Example" ---
        redis_client = redis.from_url("redis://localhost:6379/0")

        def place_order():
            # Your order placement logic
            return {"order_id": "12345", "status": "filled"}

        # Wrap the operation
        executed, result = wrap_order_placement(
            redis_client,
            place_order,
            symbol="BTCUSDT",
            side="buy",
            quantity=0.01,
            price=50000.0
        )

        if executed:
            print(f"Order placed: {result}")
        else:
            print(f"Order already placed (cached): {result}")
        # --- end of the seed's example ---

        first = capsys.readouterr().out
        assert first == "Order placed: {'order_id': '12345', 'status': 'filled'}\n"
        executed, result = wrap_order_placement(redis_client, place_order, symbol="BTCUSDT",
                                                side="buy", quantity=0.01, price=50000.0)
        assert (executed, result) == (False, {"order_id": "12345", "status": "filled"})
        # The same key and fingerprint a C++ worker uses for this order.
        entity, fingerprint = prodsafe._prodsafe._order_identity("BTCUSDT", "buy", 0.01,
                                                                 50000.0, None)
        record = redis_client.hgetall(f"effect:ORDER_PLACEMENT:{entity}")
        assert record[b"fp"].decode() == fingerprint
        assert record[b"result"] == b'{"order_id":"12345","status":"filled"}'


def test_seed_integration_guide_wrapping_operations(redis_server):
    from prodsafe import ExecutionGuardAdapter
    import redis

    class settings:  # the application's settings module
        REDIS_URL = redis_server.url

    # --- the seed, Integration Guide "Wrapping Operations" ---
    redis_client = redis.from_url(settings.REDIS_URL)
    adapter = ExecutionGuardAdapter(redis_client)

    # Wrap order placement
    def place_order_unsafe():
        # Original order placement logic
        pass

    executed, result = adapter.wrap_order_placement(
        place_order_unsafe,
        symbol="BTCUSDT",
        side="buy",
        quantity=0.01
    )
    # --- end of the seed's snippet ---

    assert (executed, result) == (True, None)
    again = adapter.wrap_order_placement(place_order_unsafe, symbol="btcusdt", side="BUY",
                                         quantity=0.01)
    assert (again.executed, again.result) == (False, None)
    # No price: a market order, a different order from a limit order.
    entity, _ = prodsafe._prodsafe._order_identity("BTCUSDT", "buy", 0.01, None, None)
    assert again.key == f"effect:ORDER_PLACEMENT:{entity}"
    limit = adapter.wrap_order_placement(place_order_unsafe, symbol="BTCUSDT", side="buy",
                                         quantity=0.01, price=50000.0)
    assert limit.executed and limit.key != again.key


def test_seed_unit_test_snippet_raises_wrong_type_not_a_crash():
    from prodsafe import SideEffectWrapper
    from unittest.mock import Mock

    redis_mock = Mock()
    with pytest.raises(prodsafe.WrongType, match="prodsafe.Redis, a redis-py client"):
        SideEffectWrapper(redis_mock)


# --- execute_once -------------------------------------------------------------


def test_execute_once_runs_once_and_returns_the_first_result(wrapper):
    runs = []

    def effect():
        runs.append(1)
        return {"fill": [1, 2.5, "é"], "ok": True, "none": None}

    first = wrapper.execute_once(EffectType.LEDGER_WRITE, "entry-1", effect)
    second = wrapper.execute_once(EffectType.LEDGER_WRITE, "entry-1", effect)
    assert len(runs) == 1
    executed, result = first
    assert executed is True and result == {"fill": [1, 2.5, "é"], "ok": True, "none": None}
    assert second.executed is False and second.result == first.result
    assert second.fencing_token == first.fencing_token > 0
    assert first.key == second.key == "effect:LEDGER_WRITE:entry-1"
    assert (first.recovered, first.commit_pending, first.unprotected, first.from_cache,
            first.result_unavailable) == (False, False, False, False, False)
    assert first[0] is True and first[1] == result and len(first) == 2
    assert second == (False, result)
    assert second[:] == (False, result) and second[-1] == result
    with pytest.raises(IndexError):
        second[2]
    copy = pickle.loads(pickle.dumps(second))  # crosses multiprocessing boundaries
    assert copy == second and (copy.key, copy.fencing_token) == (second.key, second.fencing_token)
    assert wrapper.stats()["executed"] == 1 and wrapper.stats()["duplicates"] == 1


def test_the_first_caller_gets_its_very_object(wrapper):
    value = {"a": [1]}
    outcome = wrapper.execute_once("PNL_WRITE", "p", lambda: value)
    assert outcome.result is value
    assert wrapper.execute_once("PNL_WRITE", "p", lambda: None).result is not value


@pytest.mark.parametrize("value", [
    None, True, False, 0, -1, 2**63 - 1, -2**63, 2**64 - 1, 0.1, -1e300, 5e-324, "", "naïve ☃",
    [], {}, [[[]]], {"k": {"n": [1, "2", 3.0, None]}}, "\u0000ctl\u001f",
])
def test_json_results_come_back_equal(wrapper, value):
    wrapper.execute_once("X", "v", lambda: value)
    again = wrapper.execute_once("X", "v", lambda: "not run")
    assert again.executed is False
    assert again.result == value and type(again.result) is type(value)


def test_results_are_stored_as_the_json_a_cpp_worker_stores(wrapper, redis):
    wrapper.execute_once("X", "bytes", lambda: {"z": 1, "a": [0.5, "é", None, True], "m": 1e100})
    stored = redis.execute_command("HGET", "effect:X:bytes", "result")
    # nlohmann::json::dump(): keys sorted, no spaces, UTF-8 as is.
    assert stored == '{"a":[0.5,"é",null,true],"m":1e+100,"z":1}'.encode()
    # and what a C++ worker stored reads back as Python values
    redis.execute_command("HSET", "effect:X:bytes", "result", '{"fill":[1,2],"px":50000.0}')
    assert wrapper.execute_once("X", "bytes", lambda: 0).result == {"fill": [1, 2], "px": 50000.0}


def test_tuples_come_back_as_lists(wrapper):
    assert wrapper.execute_once("X", "t", lambda: ("ok", 1)).result == ("ok", 1)
    assert wrapper.execute_once("X", "t", lambda: None).result == ["ok", 1]


class Fill:
    pass


@pytest.mark.parametrize("value, reason", [
    ({1, 2}, "set"),
    (float("nan"), "nan"),
    ([float("inf")], "inf"),
    (Fill(), "Fill"),
    ({1: "a"}, "dict key"),
    (2**64, "64-bit"),
    ("\ud800", "surrogate"),
])
def test_a_result_that_is_not_json_is_unavailable_and_never_rerun(wrapper, value, reason):
    runs = []

    def effect():
        runs.append(1)
        return value

    first = wrapper.execute_once("X", "bad", effect)
    assert first.executed and first.result_unavailable
    assert first.result is value  # the caller still gets what its effect returned
    with pytest.raises(prodsafe.ResultUnavailable, match=reason) as caught:
        wrapper.execute_once("X", "bad", effect)
    assert caught.value.key == "effect:X:bad"
    assert len(runs) == 1
    assert wrapper.stats()["encode_errors"] == 1


def test_a_cyclic_result_is_unavailable_not_a_crash(wrapper):
    cycle = []
    cycle.append(cycle)
    assert wrapper.execute_once("X", "cycle", lambda: cycle).result_unavailable
    with pytest.raises(prodsafe.ResultUnavailable, match="deeper"):
        wrapper.execute_once("X", "cycle", lambda: 1)


def test_a_garbage_stored_result_is_a_decode_error(wrapper, redis):
    wrapper.execute_once("X", "g", lambda: 1)
    redis.execute_command("HSET", "effect:X:g", "result", "{not json")
    with pytest.raises(prodsafe.DecodeError, match="effect:X:g"):
        wrapper.execute_once("X", "g", lambda: 1)


def test_fn_gets_the_effect_context_when_it_takes_an_argument(wrapper):
    seen = []

    class Exchange:
        def place(self, ctx):
            seen.append(ctx)
            return ctx.fencing_token

    outcome = wrapper.execute_once("X", "ctx1", lambda ctx: seen.append(ctx) or ctx.key)
    assert outcome.result == "effect:X:ctx1"
    assert isinstance(seen[0], prodsafe.EffectContext) and seen[0].recovering is False
    method = wrapper.execute_once("X", "ctx2", Exchange().place)
    assert method.result == method.fencing_token == seen[1].fencing_token

    class Callable:
        def __call__(self, ctx, extra=None):
            return ctx.key

    assert wrapper.execute_once("X", "ctx3", Callable()).result == "effect:X:ctx3"
    assert wrapper.execute_once("X", "ctx4", lambda ctx=None: ctx).result is None
    with pytest.raises(prodsafe.InvalidArgument, match="requires 2"):
        wrapper.execute_once("X", "ctx5", lambda a, b: 1)


def test_an_exception_from_fn_propagates_unchanged_and_releases_the_claim(wrapper):
    class PlacementError(Exception):
        pass

    error = PlacementError("exchange said no")

    def failing():
        raise error

    with pytest.raises(PlacementError) as caught:
        wrapper.execute_once(EffectType.ORDER_PLACEMENT, "o1", failing)
    assert caught.value is error
    assert "failing" in "".join(__import__("traceback").format_tb(caught.value.__traceback__))
    contexts = []
    retry = wrapper.execute_once(EffectType.ORDER_PLACEMENT, "o1",
                                 lambda ctx: contexts.append(ctx) or "placed")
    assert retry.executed and retry.recovered and contexts[0].recovering
    assert wrapper.stats()["effect_errors"] == 1


def test_keyboard_interrupt_from_fn_propagates_too(wrapper):
    def interrupted():
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        wrapper.execute_once("X", "ki", interrupted)
    assert wrapper.execute_once("X", "ki", lambda: 1).executed


def test_record_failures_gives_effect_failed(redis, tmp_path):
    wrapper = SideEffectWrapper(redis, record_failures=True, journal_dir=tmp_path)

    def failing():
        raise ValueError("insufficient margin")

    with pytest.raises(ValueError):
        wrapper.execute_once("X", "f", failing)
    with pytest.raises(prodsafe.EffectFailed) as caught:
        wrapper.execute_once("X", "f", lambda: "never")
    assert caught.value.recorded_error == "ValueError: insufficient margin"
    assert caught.value.key == "effect:X:f"
    assert wrapper.inspect("X", "f")["state"] == "failed"
    assert wrapper.clear("X", "f") is True
    assert wrapper.execute_once("X", "f", lambda: "now").result == "now"

    # a prodsafe error that says it is retryable is released, not recorded
    def unreachable():
        raise prodsafe.StoreUnavailable("downstream is down")

    with pytest.raises(prodsafe.StoreUnavailable):
        wrapper.execute_once("X", "r", unreachable)
    assert wrapper.execute_once("X", "r", lambda: 2).result == 2


def test_fingerprint_conflict(wrapper):
    wrapper.execute_once("X", "fp", lambda: 1, fingerprint="order-a")
    assert wrapper.execute_once("X", "fp", lambda: 2, fingerprint="order-a").result == 1
    with pytest.raises(prodsafe.Conflict) as caught:
        wrapper.execute_once("X", "fp", lambda: 2, fingerprint="order-b")
    assert caught.value.key == "effect:X:fp"
    adapter = prodsafe.ExecutionGuardAdapter(wrapper)
    adapter.wrap_order_placement(lambda: 1, symbol="ETHUSDT", side="sell", quantity=1,
                                 client_order_id="c-1")
    with pytest.raises(prodsafe.Conflict):
        adapter.wrap_order_placement(lambda: 1, symbol="ETHUSDT", side="sell", quantity=2,
                                     client_order_id="c-1")


def test_in_progress_throw_and_lease_lost_carries_this_callers_result(redis, tmp_path):
    slow = SideEffectWrapper(redis, lease=1, renew_leases=False, journal_dir=tmp_path)
    other = SideEffectWrapper(redis, in_progress="wait", wait_timeout=5, journal_dir=tmp_path)
    inside, release = threading.Event(), threading.Event()
    mine = {"mine": True}
    caught = []

    def slow_effect():
        inside.set()
        assert release.wait(10)
        return mine

    def run():
        try:
            slow.execute_once("X", "lease", slow_effect)
        except prodsafe.LeaseLost as error:
            caught.append(error)

    thread = threading.Thread(target=run)
    thread.start()
    assert inside.wait(5)
    with pytest.raises(prodsafe.AlreadyInProgress) as busy:
        slow.execute_once("X", "lease", lambda: 0)
    assert 0 < busy.value.retry_after <= 1 and busy.value.retryable
    taken = other.execute_once("X", "lease", lambda: "theirs")  # waits out the lease
    assert taken.executed and taken.recovered
    release.set()
    thread.join(10)
    assert len(caught) == 1
    assert caught[0].result is mine
    assert caught[0].key == "effect:X:lease" and caught[0].token < taken.fencing_token
    assert other.execute_once("X", "lease", lambda: 0).result == "theirs"


def test_result_cache_answers_without_a_round_trip(redis, tmp_path):
    wrapper = SideEffectWrapper(redis, result_cache_size=16, journal_dir=tmp_path)
    wrapper.execute_once("X", "c", lambda: [1])
    again = wrapper.execute_once("X", "c", lambda: [2])
    assert again.from_cache and again.result == [1]


def test_in_memory_store_and_custom_effect_types():
    wrapper = SideEffectWrapper(prodsafe.InMemoryEffectStore())
    custom = EffectType("MARGIN_CALL")
    assert custom == "MARGIN_CALL" and custom == EffectType.custom("MARGIN_CALL")
    assert hash(custom) == hash("MARGIN_CALL")
    assert repr(EffectType.PNL_WRITE) == "EffectType.PNL_WRITE"
    assert repr(custom) == "EffectType('MARGIN_CALL')"
    assert pickle.loads(pickle.dumps(custom)) == custom
    assert [t.name for t in (EffectType.ORDER_PLACEMENT, EffectType.POSITION_UPDATE,
                             EffectType.PNL_WRITE, EffectType.LEDGER_WRITE,
                             EffectType.TRADE_STATE_WRITE)] == [
        "ORDER_PLACEMENT", "POSITION_UPDATE", "PNL_WRITE", "LEDGER_WRITE", "TRADE_STATE_WRITE"]
    assert wrapper.execute_once(custom, 7, lambda: 1).key == "effect:MARGIN_CALL:7"
    assert wrapper.execute_once("MARGIN_CALL", "7", lambda: 2).result == 1
    with pytest.raises(prodsafe.InvalidArgument):
        EffectType("has:colon")
    with pytest.raises(prodsafe.InvalidArgument):
        EffectType("")


def test_adapter_and_module_functions_share_one_wrapper_per_client(redis_server):
    from prodsafe import (wrap_ledger_write, wrap_pnl_write, wrap_position_update,
                          wrap_trade_state_write)

    client = redis_py.from_url(redis_server.url)
    assert prodsafe.wrapper_for(client) is prodsafe.wrapper_for(client)
    runs = []
    for wrap, type_name in ((wrap_position_update, "POSITION_UPDATE"),
                            (wrap_pnl_write, "PNL_WRITE"), (wrap_ledger_write, "LEDGER_WRITE"),
                            (wrap_trade_state_write, "TRADE_STATE_WRITE")):
        outcome = wrap(client, lambda: runs.append(1) or len(runs), "id-1")
        assert outcome.executed and outcome.key == f"effect:{type_name}:id-1"
        assert wrap(client, lambda: runs.append(1), "id-1") == (False, outcome.result)
    assert len(runs) == 4
    adapter = prodsafe.ExecutionGuardAdapter(client)
    assert adapter.wrapper is prodsafe.wrapper_for(client)
    assert adapter.wrap_pnl_write(lambda: 0, "id-1").result == 2


def test_options_durations_and_errors(redis, tmp_path):
    SideEffectWrapper(redis, ttl=datetime.timedelta(hours=1), lease=2.5, wait_timeout=1,
                      in_progress="wait", durability={"replicas": 0, "timeout": 0.1},
                      per_type={EffectType.PNL_WRITE: {"fail_open": True, "ttl": 60},
                                "CUSTOM": {"record_failures": True}},
                      commit_attempts=2, result_cache_size=4, journal_directory=tmp_path)
    with pytest.raises(prodsafe.InvalidArgument, match="unknown option 'tll'"):
        SideEffectWrapper(redis, tll=1)
    with pytest.raises(prodsafe.InvalidArgument, match="lease"):
        SideEffectWrapper(redis, ttl=10, lease=20)  # ttl must exceed the lease
    with pytest.raises(prodsafe.InvalidArgument, match='"throw" or "wait"'):
        SideEffectWrapper(redis, in_progress="block")
    with pytest.raises(prodsafe.InvalidArgument, match="unknown per_type"):
        SideEffectWrapper(redis, per_type={"X": {"ttl": 1, "lifetime": 2}})
    with pytest.raises(prodsafe.InvalidArgument, match="replicas"):
        SideEffectWrapper(redis, durability=101)
    with pytest.raises(prodsafe.InvalidArgument, match="not both"):
        SideEffectWrapper(redis, journal_dir="a", journal_directory="b")


@pytest.mark.parametrize("kwargs, name", [
    ({"ttl": "72h"}, "ttl"),
    ({"lease": None}, "lease"),
    ({"renew_leases": 1}, "renew_leases"),
    ({"record_failures": "yes"}, "record_failures"),
    ({"in_progress": 1}, "in_progress"),
    ({"commit_attempts": 2.0}, "commit_attempts"),
    ({"journal_directory": 3}, "journal_directory"),
    ({"result_cache_size": "8"}, "result_cache_size"),
    ({"durability": "all"}, "durability"),
    ({"per_type": [1]}, "per_type"),
    ({"per_type": {3: {}}}, "effect_type"),
    ({"per_type": {"X": {"fail_open": 1}}}, "fail_open"),
])
def test_wrong_option_types_are_wrong_type(redis, kwargs, name):
    with pytest.raises(prodsafe.WrongType, match=name):
        SideEffectWrapper(redis, **kwargs)


@pytest.mark.parametrize("args, kwargs, name", [
    ((3.5, "id", lambda: 1), {}, "effect_type"),
    ((None, "id", lambda: 1), {}, "effect_type"),
    (("X", None, lambda: 1), {}, "entity_id"),
    (("X", b"id", lambda: 1), {}, "entity_id"),
    (("X", True, lambda: 1), {}, "entity_id"),
    (("X", "id", "not callable"), {}, "fn"),
    (("X", "id", lambda: 1, 42), {}, "fingerprint"),
    (("X", "id", lambda: 1), {"ttl": "1d"}, "ttl"),
    (("X", "id", lambda: 1), {"lease": [1]}, "lease"),
    (("X", "id", lambda: 1), {"in_progress": True}, "in_progress"),
    (("X", "id", lambda: 1), {"wait_timeout": object()}, "wait_timeout"),
])
def test_wrong_argument_types_are_wrong_type_and_nothing_runs(wrapper, args, kwargs, name):
    with pytest.raises(prodsafe.WrongType, match=name):
        wrapper.execute_once(*args, **kwargs)
    assert wrapper.stats()["executed"] == 0


def test_wrong_types_elsewhere(wrapper):
    with pytest.raises(prodsafe.WrongType, match="redis"):
        SideEffectWrapper("redis://127.0.0.1")
    with pytest.raises(prodsafe.WrongType, match="redis"):
        SideEffectWrapper(None)
    with pytest.raises(prodsafe.WrongType, match="name"):
        EffectType(5)
    with pytest.raises(prodsafe.InvalidArgument, match="entity"):
        wrapper.execute_once("X", "", lambda: 1)
    with pytest.raises(prodsafe.InvalidArgument, match="entity"):
        wrapper.execute_once("X", "a\nb", lambda: 1)
    adapter = prodsafe.ExecutionGuardAdapter(wrapper)
    for kwargs, name in (({"symbol": 1, "side": "buy", "quantity": 1}, "symbol"),
                         ({"symbol": "A", "side": None, "quantity": 1}, "side"),
                         ({"symbol": "A", "side": "buy", "quantity": "1"}, "quantity"),
                         ({"symbol": "A", "side": "buy", "quantity": True}, "quantity"),
                         ({"symbol": "A", "side": "buy", "quantity": 1, "price": "1"}, "price"),
                         ({"symbol": "A", "side": "buy", "quantity": 1,
                           "client_order_id": 1.5}, "client_order_id")):
        with pytest.raises(prodsafe.WrongType, match=name):
            adapter.wrap_order_placement(lambda: 1, **kwargs)
    for kwargs, text in (({"symbol": "", "side": "buy", "quantity": 1}, "symbol"),
                         ({"symbol": "A", "side": "hold", "quantity": 1}, "side"),
                         ({"symbol": "A", "side": "buy", "quantity": -1}, "quantity"),
                         ({"symbol": "A", "side": "buy", "quantity": float("nan")}, "quantity"),
                         ({"symbol": "A", "side": "buy", "quantity": 1, "price": 0}, "price")):
        with pytest.raises(prodsafe.InvalidArgument, match=text):
            adapter.wrap_order_placement(lambda: 1, **kwargs)
    assert wrapper.stats()["executed"] == 0


def test_the_gil_is_released_while_redis_does_not_answer(redis_server, tmp_path):
    client = prodsafe.Redis(redis_server.url, command_timeout=2)
    wrapper = SideEffectWrapper(client, journal_dir=tmp_path)
    wrapper.execute_once("X", "warm", lambda: 1)  # the connection is open
    started, done = threading.Event(), threading.Event()
    errors, runs = [], []

    def call():
        started.set()
        try:
            wrapper.execute_once("X", "paused", lambda: runs.append(1))
        except prodsafe.Error as error:
            errors.append(error)
        done.set()

    redis_server.pause()
    try:
        thread = threading.Thread(target=call)
        thread.start()
        assert started.wait(5)
        spins, until = 0, time.monotonic() + 0.4
        while time.monotonic() < until:  # Python code runs while the call waits
            spins += 1
        assert not done.is_set(), "execute_once returned early; the test proves nothing"
        assert spins > 10_000
        thread.join(10)
    finally:
        redis_server.resume()
    assert isinstance(errors[0], prodsafe.StoreUnavailable) and not runs


def test_wait_releases_the_gil_too(redis, tmp_path):
    holder = SideEffectWrapper(redis, journal_dir=tmp_path)
    waiter = SideEffectWrapper(redis, in_progress="wait", wait_timeout=10, journal_dir=tmp_path)
    inside, release, waiting = threading.Event(), threading.Event(), threading.Event()
    results = []
    thread = threading.Thread(
        target=lambda: holder.execute_once("X", "w", lambda: inside.set() or release.wait(10)
                                           and "done"))
    thread.start()
    assert inside.wait(5)

    def wait_for_it():
        waiting.set()
        results.append(waiter.execute_once("X", "w", lambda: "twice"))

    second = threading.Thread(target=wait_for_it)
    second.start()
    assert waiting.wait(5)
    spins, until = 0, time.monotonic() + 0.3
    while time.monotonic() < until:  # Python code runs while the other call waits
        spins += 1
    assert second.is_alive() and spins > 10_000
    release.set()
    thread.join(10)
    second.join(10)
    assert results[0] == (False, "done")


# --- the decorator -------------------------------------------------------------


def test_idempotent_decorator(redis_server):
    from prodsafe import idempotent

    client = redis_py.from_url(redis_server.url)
    placed = []

    @idempotent(EffectType.ORDER_PLACEMENT, key=lambda order: order["client_order_id"],
                redis=client)
    def place_order(order):
        """Places an order."""
        placed.append(order["client_order_id"])
        return {"order_id": "x-" + order["client_order_id"]}

    assert place_order.__name__ == "place_order" and place_order.__doc__ == "Places an order."
    executed, fill = place_order({"client_order_id": "c1", "qty": 1})
    assert executed and fill == {"order_id": "x-c1"}
    again = place_order({"client_order_id": "c1", "qty": 1})
    assert again == (False, {"order_id": "x-c1"}) and again.key == "effect:ORDER_PLACEMENT:c1"
    assert place_order({"client_order_id": "c2"}).executed
    assert placed == ["c1", "c2"]


def test_idempotent_with_a_default_wrapper_and_a_fingerprint(redis, tmp_path):
    from prodsafe import idempotent, set_default_wrapper

    @idempotent("LEDGER_WRITE", key=lambda entry_id, amount: entry_id,
                fingerprint=lambda entry_id, amount: str(amount))
    def write(entry_id, amount):
        return amount

    import prodsafe.idempotency as module
    saved = list(module._default)
    module._default.clear()
    try:
        with pytest.raises(prodsafe.InvalidArgument, match="set_default_wrapper"):
            write("e1", 5)
        set_default_wrapper(redis, journal_dir=tmp_path)
        assert write("e1", 5) == (True, 5)
        assert write("e1", amount=5) == (False, 5)
        with pytest.raises(prodsafe.Conflict):
            write("e1", 6)
    finally:
        module._default[:] = saved
    with pytest.raises(prodsafe.WrongType, match="key"):
        idempotent("X", key="client_order_id")
    with pytest.raises(prodsafe.WrongType, match="effect_type"):
        idempotent(1, key=lambda: "x")


def test_timing_helper_runs(redis_server):
    """The timing script (not a benchmark here): it runs and both designs agree."""
    import _idem_timing

    figures = _idem_timing.measure(redis_server.url, rounds=50)
    assert set(figures) == {"prodsafe_first", "prodsafe_duplicate", "prodsafe_cached_first",
                            "prodsafe_cached_duplicate", "setnx_first", "setnx_duplicate"}
    assert all(value > 0 for value in figures.values())


def test_an_async_fn_given_to_execute_once_is_refused_before_it_claims(wrapper):
    async def place():
        return 1

    with pytest.raises(prodsafe.WrongType, match="execute_once_async"):
        wrapper.execute_once("X", "async", place)

    def generator():
        yield 1

    with pytest.raises(prodsafe.WrongType, match="generator"):
        wrapper.execute_once("X", "async", generator)
    # an awaitable returned by a plain callable has not run: the claim is released
    with pytest.raises(prodsafe.WrongType, match="awaitable"):
        wrapper.execute_once("X", "async", lambda: place())
    assert wrapper.execute_once("X", "async", lambda: 2).result == 2
    assert wrapper.stats()["executed"] == 1


def test_integers_that_are_not_int_but_index_like_are_stored():
    class Int64:  # a stand-in for numpy.int64: an object with __index__
        def __init__(self, value):
            self.value = value

        def __index__(self):
            return self.value

    wrapper = SideEffectWrapper(prodsafe.InMemoryEffectStore())
    assert wrapper.execute_once("X", "i", lambda: [Int64(7)]).result_unavailable is False
    assert wrapper.execute_once("X", "i", lambda: 0).result == [7]


def test_results_whose_reading_runs_python_code_that_raises_are_still_the_effects():
    class Items(list):
        def __iter__(self):
            raise RuntimeError("not iterable this way")

    class BadFloat(float):
        def __repr__(self):
            raise RuntimeError("no repr")

    wrapper = SideEffectWrapper(prodsafe.InMemoryEffectStore())
    assert wrapper.execute_once("X", "items", lambda: Items([1, 2])).result_unavailable is False
    assert wrapper.execute_once("X", "items", lambda: 0).result == [1, 2]
    runs = []
    outcome = wrapper.execute_once("X", "nan", lambda: runs.append(1) or BadFloat("nan"))
    assert outcome.executed and outcome.result_unavailable  # ran: never released
    with pytest.raises(prodsafe.ResultUnavailable, match="no repr"):
        wrapper.execute_once("X", "nan", lambda: runs.append(1))
    assert runs == [1]
