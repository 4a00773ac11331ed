"""Exactly-once side effects (docs/python.md), on prodsafe's C++ SideEffectWrapper.

    import redis
    from prodsafe import wrap_order_placement

    redis_client = redis.from_url("redis://localhost:6379/0")
    executed, result = wrap_order_placement(redis_client, place_order, symbol="BTCUSDT",
                                            side="buy", quantity=0.01, price=50000.0)

- SideEffectWrapper(redis, **options).execute_once(effect_type, entity_id, fn)
  runs fn at most once per (type, id) across every process sharing the Redis
  and returns an Outcome that unpacks as (executed, result). fn is called as
  fn() or, when it has a required positional parameter, fn(ctx) with the
  EffectContext (key, fencing_token, recovering).
- Results are JSON values (None, bool, int, float, str, lists, tuples and
  dicts with str keys; ints within 64 bits, as C++ holds them), stored as the
  JSON text a C++ worker's nlohmann::json result stores, so Python and C++
  workers share effects (a C++ std::string result is stored raw, not as
  JSON: Python reads it as DecodeError). A duplicate gets an equal value
  (tuples come back as lists). A result that is not JSON (a set, NaN, an
  object) cannot be stored: the effect has run, so the caller gets it with
  Outcome.result_unavailable and later calls raise ResultUnavailable instead
  of running the effect again (clear() the record to run it once more).
- An exception raised by fn propagates unchanged, after the claim is
  released (a later call runs fn again, with ctx.recovering) or, with
  record_failures=True, recorded (later calls raise EffectFailed).
- The GIL is released while the wrapper talks to Redis or waits; fn runs
  with the GIL held, in the calling thread.
- await wrapper.execute_once_async(...): the Redis work runs in an executor
  thread; an async fn is awaited on the caller's event loop.
- ExecutionGuardAdapter and the seed's module-level wrap_order_placement,
  wrap_position_update, wrap_pnl_write, wrap_ledger_write and
  wrap_trade_state_write (one wrapper per Redis client per process).
- @idempotent(effect_type, key=...): the decorated function returns an Outcome.
"""

from __future__ import annotations

import asyncio
import functools
import inspect
import os
import threading
import weakref
from typing import Any, Callable

from prodsafe._prodsafe import EffectContext, EffectType, InMemoryEffectStore, Outcome
from prodsafe._prodsafe import SideEffectWrapper as _NativeWrapper
from prodsafe._prodsafe import _order_identity, _takes_context
from prodsafe.errors import InvalidArgument, WrongType

__all__ = [
    "EffectType",
    "EffectContext",
    "Outcome",
    "InMemoryEffectStore",
    "SideEffectWrapper",
    "ExecutionGuardAdapter",
    "wrapper_for",
    "set_default_wrapper",
    "idempotent",
    "wrap_order_placement",
    "wrap_position_update",
    "wrap_pnl_write",
    "wrap_ledger_write",
    "wrap_trade_state_write",
]


def _required_positional(fn: Any) -> int:
    """How many positional parameters `fn` requires (for callables that are
    not plain functions or bound methods; the extension reads those itself)."""
    try:
        signature = inspect.signature(fn)
    except (TypeError, ValueError):  # a builtin without a signature: call it bare
        return 0
    kinds = (inspect.Parameter.POSITIONAL_ONLY, inspect.Parameter.POSITIONAL_OR_KEYWORD)
    return sum(1 for p in signature.parameters.values()
               if p.kind in kinds and p.default is inspect.Parameter.empty)


async def _awaited(awaitable: Any) -> Any:
    return await awaitable


class SideEffectWrapper(_NativeWrapper):
    __doc__ = _NativeWrapper.__doc__

    async def execute_once_async(self, effect_type: Any, entity_id: Any, fn: Callable[..., Any],
                                 fingerprint: str | None = None, *, ttl: Any = None,
                                 lease: Any = None, in_progress: str | None = None,
                                 wait_timeout: Any = None, executor: Any = None) -> Outcome:
        """execute_once for asyncio workers, without blocking the event loop.

        The claim, the commit and every wait run in `executor` (default: the
        loop's default executor). fn may be an ``async def`` (or return an
        awaitable): it is awaited on this event loop, between the claim and
        the commit; a plain fn runs in the executor thread. Cancelling the
        awaiting task does not stop an effect that started: it still runs to
        its end and commits (or releases its claim).

        Each call holds an executor thread from its claim to its commit, also
        while its async fn runs on the loop: the default executor's few
        threads bound how many effects are in flight, and an effect that
        itself awaits execute_once_async should pass its own `executor` (a
        concurrent.futures.ThreadPoolExecutor) so the two cannot wait on
        each other's threads.
        """
        loop = asyncio.get_running_loop()
        with_context = _takes_context(fn)

        def runner(context: EffectContext) -> Any:
            value = fn(context) if with_context else fn()
            if inspect.isawaitable(value):
                return asyncio.run_coroutine_threadsafe(_awaited(value), loop).result()
            return value

        call = functools.partial(self.execute_once, effect_type, entity_id, runner, fingerprint,
                                 ttl=ttl, lease=lease, in_progress=in_progress,
                                 wait_timeout=wait_timeout)
        return await loop.run_in_executor(executor, call)


_wrappers: "weakref.WeakKeyDictionary[Any, tuple[int, SideEffectWrapper]]" = (
    weakref.WeakKeyDictionary())
_lock = threading.Lock()


def wrapper_for(redis: Any) -> SideEffectWrapper:
    """The SideEffectWrapper for `redis`: itself when it is one, else the one
    this process keeps for that prodsafe.Redis or redis-py client (made with
    the default options on first use; a forked child makes its own)."""
    if isinstance(redis, _NativeWrapper):
        return redis  # type: ignore[return-value]
    pid = os.getpid()
    try:
        with _lock:
            entry = _wrappers.get(redis)
    except TypeError:  # not weak-referenceable: no cache
        entry = None
    if entry is not None and entry[0] == pid:
        return entry[1]
    wrapper = SideEffectWrapper(redis)
    try:
        with _lock:
            entry = _wrappers.get(redis)
            if entry is not None and entry[0] == pid:
                return entry[1]
            _wrappers[redis] = (pid, wrapper)
    except TypeError:
        pass
    return wrapper


class ExecutionGuardAdapter:
    """The seed's non-invasive adapters: wrap existing functions in
    exactly-once protection without changing them.

        adapter = ExecutionGuardAdapter(redis_client)
        executed, fill = adapter.wrap_order_placement(place_order, symbol="BTCUSDT",
                                                      side="buy", quantity=0.01)

    redis_or_wrapper: a SideEffectWrapper, or a prodsafe.Redis / redis-py
    client (then the process's shared wrapper for it, or a new one when
    options are given). The order's entity id is its client_order_id, else a
    hash of its fields (as in C++): identical orders within the TTL are one
    order. No price means a market order.
    """

    def __init__(self, redis_or_wrapper: Any, **options: Any) -> None:
        if options:
            self.wrapper = SideEffectWrapper(redis_or_wrapper, **options)
        else:
            self.wrapper = wrapper_for(redis_or_wrapper)

    def wrap_order_placement(self, fn: Callable[..., Any], symbol: str, side: str,
                             quantity: float, price: float | None = None,
                             client_order_id: str | None = None, **call_options: Any) -> Outcome:
        entity_id, fingerprint = _order_identity(symbol, side, quantity, price, client_order_id)
        return self.wrapper.execute_once(EffectType.ORDER_PLACEMENT, entity_id, fn, fingerprint,
                                         **call_options)

    def wrap_position_update(self, fn: Callable[..., Any], position_id: str,
                             **call_options: Any) -> Outcome:
        return self.wrapper.execute_once(EffectType.POSITION_UPDATE, position_id, fn,
                                         **call_options)

    def wrap_pnl_write(self, fn: Callable[..., Any], pnl_id: str, **call_options: Any) -> Outcome:
        return self.wrapper.execute_once(EffectType.PNL_WRITE, pnl_id, fn, **call_options)

    def wrap_ledger_write(self, fn: Callable[..., Any], entry_id: str,
                          **call_options: Any) -> Outcome:
        return self.wrapper.execute_once(EffectType.LEDGER_WRITE, entry_id, fn, **call_options)

    def wrap_trade_state_write(self, fn: Callable[..., Any], trade_id: str,
                               **call_options: Any) -> Outcome:
        return self.wrapper.execute_once(EffectType.TRADE_STATE_WRITE, trade_id, fn,
                                         **call_options)


def wrap_order_placement(redis_client: Any, fn: Callable[..., Any], symbol: str, side: str,
                         quantity: float, price: float | None = None,
                         client_order_id: str | None = None, **call_options: Any) -> Outcome:
    """The seed's wrap_order_placement(redis_client, fn, symbol=..., side=...,
    quantity=..., price=...): ExecutionGuardAdapter(redis_client).wrap_order_placement."""
    return ExecutionGuardAdapter(redis_client).wrap_order_placement(
        fn, symbol, side, quantity, price, client_order_id, **call_options)


def wrap_position_update(redis_client: Any, fn: Callable[..., Any], position_id: str,
                         **call_options: Any) -> Outcome:
    return ExecutionGuardAdapter(redis_client).wrap_position_update(fn, position_id,
                                                                    **call_options)


def wrap_pnl_write(redis_client: Any, fn: Callable[..., Any], pnl_id: str,
                   **call_options: Any) -> Outcome:
    return ExecutionGuardAdapter(redis_client).wrap_pnl_write(fn, pnl_id, **call_options)


def wrap_ledger_write(redis_client: Any, fn: Callable[..., Any], entry_id: str,
                      **call_options: Any) -> Outcome:
    return ExecutionGuardAdapter(redis_client).wrap_ledger_write(fn, entry_id, **call_options)


def wrap_trade_state_write(redis_client: Any, fn: Callable[..., Any], trade_id: str,
                           **call_options: Any) -> Outcome:
    return ExecutionGuardAdapter(redis_client).wrap_trade_state_write(fn, trade_id,
                                                                      **call_options)


_default: list[SideEffectWrapper] = []


def set_default_wrapper(redis_or_wrapper: Any, **options: Any) -> SideEffectWrapper:
    """Sets the wrapper @idempotent uses when it is given no redis: the
    wrapper itself, or one made for a prodsafe.Redis / redis-py client (with
    `options`). Returns it."""
    if isinstance(redis_or_wrapper, _NativeWrapper):
        if options:
            raise InvalidArgument("options apply to a new wrapper, not to a SideEffectWrapper")
        wrapper = redis_or_wrapper
    elif options:
        wrapper = SideEffectWrapper(redis_or_wrapper, **options)
    else:
        wrapper = wrapper_for(redis_or_wrapper)
    with _lock:
        _default[:] = [wrapper]
    return wrapper  # type: ignore[return-value]


def _resolve(redis: Any) -> SideEffectWrapper:
    if redis is None:
        with _lock:
            if _default:
                return _default[0]
        raise InvalidArgument(
            "@idempotent was given no redis and no default wrapper is set: pass redis=... "
            "or call prodsafe.set_default_wrapper(redis_client) first")
    if callable(redis) and not isinstance(redis, _NativeWrapper):
        redis = redis()
    return wrapper_for(redis)


def idempotent(effect_type: EffectType | str, key: Callable[..., Any], *, redis: Any = None,
               fingerprint: Callable[..., str] | None = None,
               **call_options: Any) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """Makes a function run at most once per key.

        @idempotent(EffectType.ORDER_PLACEMENT, key=lambda order: order["client_order_id"],
                    redis=redis_client)
        def place_order(order):
            return exchange.place(order)

        executed, fill = place_order(order)

    The decorated function returns an Outcome, which unpacks as (executed,
    result) like every other entry point here: a duplicate call returns the
    first call's result with executed False instead of calling the function.

    key: called with the function's arguments; returns the entity id (str or
    int). fingerprint: optional, called with the same arguments; a reused key
    with another fingerprint raises Conflict. redis: a SideEffectWrapper, a
    prodsafe.Redis or redis-py client, or a zero-argument callable returning
    one (looked up at each call, so modules can decorate before connecting);
    None: the wrapper set with set_default_wrapper(). call_options: ttl,
    lease, in_progress, wait_timeout for every call. An ``async def`` function
    gives an async function (execute_once_async). The function itself does
    not receive the EffectContext; use execute_once for that.
    """
    if not isinstance(effect_type, EffectType):
        if not isinstance(effect_type, str):
            raise WrongType(f"effect_type must be an EffectType or a str, not "
                            f"{type(effect_type).__name__}")
        effect_type = EffectType(effect_type)
    if not callable(key):
        raise WrongType(f"key must be a callable returning the entity id, not "
                        f"{type(key).__name__}")
    if fingerprint is not None and not callable(fingerprint):
        raise WrongType(f"fingerprint must be a callable returning a str, not "
                        f"{type(fingerprint).__name__}")

    def decorate(func: Callable[..., Any]) -> Callable[..., Any]:
        if not callable(func):
            raise WrongType(f"@idempotent decorates a callable, not {type(func).__name__}")

        def identity(args: tuple, kwargs: dict) -> tuple[Any, str | None]:
            return key(*args, **kwargs), (fingerprint(*args, **kwargs) if fingerprint else None)

        if inspect.iscoroutinefunction(func):
            @functools.wraps(func)
            async def run_async(*args: Any, **kwargs: Any) -> Outcome:
                entity_id, print_ = identity(args, kwargs)
                return await _resolve(redis).execute_once_async(
                    effect_type, entity_id, lambda: func(*args, **kwargs), print_,
                    **call_options)
            return run_async

        @functools.wraps(func)
        def run(*args: Any, **kwargs: Any) -> Outcome:
            entity_id, print_ = identity(args, kwargs)
            return _resolve(redis).execute_once(effect_type, entity_id,
                                                lambda: func(*args, **kwargs), print_,
                                                **call_options)
        return run

    return decorate
