"""execute_once_async and async @idempotent: the event loop never blocks on
Redis, async effects run on the caller's loop."""

import asyncio
import threading

import pytest

import prodsafe
from prodsafe import EffectType, SideEffectWrapper, idempotent


@pytest.fixture
def wrapper(redis, tmp_path):
    return SideEffectWrapper(redis, journal_directory=str(tmp_path))


def test_an_async_effect_runs_once_on_the_callers_loop(wrapper):
    async def main():
        loop_thread = threading.get_ident()
        seen = []

        async def place(ctx):
            seen.append((threading.get_ident(), asyncio.current_task() is not None, ctx.key))
            await asyncio.sleep(0.01)
            return {"order_id": "a1"}

        first = await wrapper.execute_once_async(EffectType.ORDER_PLACEMENT, "a1", place)
        second = await wrapper.execute_once_async(EffectType.ORDER_PLACEMENT, "a1", place)
        return loop_thread, seen, first, second

    loop_thread, seen, first, second = asyncio.run(main())
    assert seen == [(loop_thread, True, "effect:ORDER_PLACEMENT:a1")]
    assert first == (True, {"order_id": "a1"}) and second == (False, {"order_id": "a1"})


def test_a_plain_fn_runs_in_the_executor_thread(wrapper):
    async def main():
        return threading.get_ident(), await wrapper.execute_once_async(
            "X", "plain", lambda: threading.get_ident())

    loop_thread, outcome = asyncio.run(main())
    assert outcome.executed and outcome.result != loop_thread


def test_the_loop_keeps_running_while_redis_does_not_answer(redis_server, tmp_path):
    client = prodsafe.Redis(redis_server.url, command_timeout=1)
    wrapper = SideEffectWrapper(client, journal_directory=str(tmp_path))
    wrapper.execute_once("X", "warm", lambda: 1)
    runs = []

    async def main():
        ticks = 0
        stop = asyncio.Event()

        async def ticker():
            nonlocal ticks
            while not stop.is_set():
                ticks += 1
                await asyncio.sleep(0.005)

        task = asyncio.create_task(ticker())
        try:
            with pytest.raises(prodsafe.StoreUnavailable):
                await wrapper.execute_once_async("X", "paused", lambda: runs.append(1))
        finally:
            stop.set()
            await task
        return ticks

    redis_server.pause()
    try:
        ticks = asyncio.run(main())
    finally:
        redis_server.resume()
    assert ticks > 50, ticks  # ~1 s of 5 ms ticks while the call waited
    assert not runs


def test_an_exception_from_an_async_effect_propagates_unchanged(wrapper):
    error = RuntimeError("exchange rejected")

    async def failing():
        await asyncio.sleep(0)
        raise error

    async def main():
        with pytest.raises(RuntimeError) as caught:
            await wrapper.execute_once_async("X", "boom", failing)
        assert caught.value is error
        return await wrapper.execute_once_async("X", "boom", lambda ctx: ctx.recovering)

    assert asyncio.run(main()) == (True, True)


def test_async_tasks_racing_run_each_effect_once(redis, tmp_path):
    wrapper = SideEffectWrapper(redis, in_progress="wait", wait_timeout=20,
                                journal_directory=str(tmp_path))
    runs = []

    async def main():
        async def effect(entity_id):
            runs.append(entity_id)
            await asyncio.sleep(0.005)
            return entity_id.upper()

        calls = [wrapper.execute_once_async("X", f"r{i % 5}",
                                            lambda i=i: effect(f"r{i % 5}"))
                 for i in range(30)]
        return await asyncio.gather(*calls)

    outcomes = asyncio.run(main())
    assert sorted(runs) == [f"r{i}" for i in range(5)]
    assert sum(o.executed for o in outcomes) == 5
    assert all(o.result == o.key.split(":")[-1].upper() for o in outcomes)


def test_cancelling_the_caller_does_not_stop_a_started_effect(wrapper):
    async def main():
        started, finish = asyncio.Event(), asyncio.Event()

        async def effect():
            started.set()
            await finish.wait()
            return "done"

        call = asyncio.create_task(wrapper.execute_once_async("X", "cancel", effect))
        await started.wait()
        call.cancel()
        with pytest.raises(asyncio.CancelledError):
            await call
        finish.set()
        for _ in range(500):  # the effect commits in its executor thread
            record = await asyncio.to_thread(wrapper.inspect, "X", "cancel")
            if record["state"] == "completed":
                break
            await asyncio.sleep(0.01)
        return await wrapper.execute_once_async("X", "cancel", lambda: "again")

    assert asyncio.run(main()) == (False, "done")


def test_async_idempotent_decorator(redis, tmp_path):
    wrapper = SideEffectWrapper(redis, journal_directory=str(tmp_path))
    placed = []

    @idempotent(EffectType.ORDER_PLACEMENT, key=lambda order: order["client_order_id"],
                redis=lambda: wrapper)
    async def place_order(order):
        placed.append(order["client_order_id"])
        await asyncio.sleep(0)
        return {"filled": order["qty"]}

    async def main():
        first = await place_order({"client_order_id": "c9", "qty": 2})
        second = await place_order({"client_order_id": "c9", "qty": 2})
        return first, second

    first, second = asyncio.run(main())
    assert asyncio.iscoroutinefunction(place_order)
    assert first == (True, {"filled": 2}) and second == (False, {"filled": 2})
    assert placed == ["c9"]
