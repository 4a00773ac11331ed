from concurrent.futures import Executor
from datetime import timedelta
from os import PathLike
from typing import Any, Callable, ClassVar, Iterator, Literal, TypedDict

from prodsafe.client import Redis

Seconds = float | timedelta
InProgress = Literal["throw", "wait"]

class DurabilitySettings(TypedDict, total=False):
    replicas: int
    timeout: Seconds
    aof: bool

class EffectPolicySettings(TypedDict, total=False):
    ttl: Seconds
    lease: Seconds
    record_failures: bool
    fail_open: bool
    durability: int | DurabilitySettings

class EffectType:
    """A kind of side effect; its Redis key is effect:<name>:<entity_id>, as in C++.
    Equal to (and hashes like) its name as a str."""

    ORDER_PLACEMENT: ClassVar[EffectType]
    POSITION_UPDATE: ClassVar[EffectType]
    PNL_WRITE: ClassVar[EffectType]
    LEDGER_WRITE: ClassVar[EffectType]
    TRADE_STATE_WRITE: ClassVar[EffectType]
    def __init__(self, name: str) -> None:
        """A custom type: 1 to 64 characters of [A-Za-z0-9_.-] (else InvalidArgument)."""
    @staticmethod
    def custom(name: str) -> EffectType: ...
    @property
    def name(self) -> str: ...
    def __eq__(self, other: object) -> bool: ...
    def __hash__(self) -> int: ...

class EffectContext:
    """Given to an effect that takes one argument: pass key and fencing_token
    downstream; when recovering is True an earlier run may have acted."""

    @property
    def key(self) -> str: ...
    @property
    def fencing_token(self) -> int: ...
    @property
    def recovering(self) -> bool: ...

class Outcome:
    """What execute_once returns; unpacks as (executed, result)."""

    @property
    def executed(self) -> bool:
        """This call ran the effect (False: an earlier run's result)."""
    @property
    def result(self) -> Any:
        """The result: this caller's own object when it ran the effect, else an
        equal value decoded from the stored JSON (tuples come back as lists)."""
    @property
    def recovered(self) -> bool:
        """This call took over from an earlier run that may have acted."""
    @property
    def commit_pending(self) -> bool:
        """The effect ran; its result waits in the local journal for Redis."""
    @property
    def unprotected(self) -> bool:
        """Run without protection: Redis was down and the type fails open."""
    @property
    def from_cache(self) -> bool:
        """Answered from the in-process result cache."""
    @property
    def result_unavailable(self) -> bool:
        """This call ran the effect but its result is not JSON, so none is
        stored; later calls raise ResultUnavailable."""
    @property
    def key(self) -> str: ...
    @property
    def fencing_token(self) -> int: ...
    def __iter__(self) -> Iterator[Any]: ...
    def __len__(self) -> int: ...
    def __getitem__(self, index: int | slice) -> Any:
        """As the tuple (executed, result)."""
    def __eq__(self, other: object) -> bool:
        """Equal to the tuple (executed, result), or to an Outcome with equal fields."""

class InMemoryEffectStore:
    """Effect records in this process's memory (one process, tests)."""

    def __init__(self) -> None: ...
    def __len__(self) -> int: ...

class SideEffectWrapper:
    """Runs side effects exactly once across every process sharing a Redis.
    Make wrappers after forking: a forked child's calls on its parent's
    wrapper raise InvalidArgument. Safe for concurrent use by many threads."""

    def __init__(
        self,
        redis: Redis | InMemoryEffectStore | Any,
        *,
        ttl: Seconds = ...,
        lease: Seconds = ...,
        renew_leases: bool = ...,
        in_progress: InProgress = ...,
        wait_timeout: Seconds = ...,
        wait_poll_initial: Seconds = ...,
        wait_poll_max: Seconds = ...,
        record_failures: bool = ...,
        commit_attempts: int = ...,
        commit_retry_delay: Seconds = ...,
        journal_directory: str | PathLike[str] = ...,
        journal_dir: str | PathLike[str] = ...,
        journal_namespace: str = ...,
        journal_flush_interval: Seconds = ...,
        journal_scan_interval: Seconds = ...,
        result_cache_size: int = ...,
        durability: int | DurabilitySettings = ...,
        per_type: dict[EffectType | str, EffectPolicySettings] = ...,
    ) -> None:
        """redis: a prodsafe.Redis, a redis-py client or an InMemoryEffectStore
        (anything else: WrongType). Options as the C++ WrapperOptions, durations
        in seconds or timedelta; an unknown option is InvalidArgument."""
    def execute_once(
        self,
        effect_type: EffectType | str,
        entity_id: str | int,
        fn: Callable[[], Any] | Callable[[EffectContext], Any],
        fingerprint: str | None = None,
        *,
        ttl: Seconds | None = None,
        lease: Seconds | None = None,
        in_progress: InProgress | None = None,
        wait_timeout: Seconds | None = None,
    ) -> Outcome:
        """Runs fn at most once per (effect_type, entity_id). fn() or fn(ctx) when
        fn has a required positional parameter. fn's exceptions propagate
        unchanged (the claim released, or recorded with record_failures).
        Raises Conflict, AlreadyInProgress, LeaseLost (with .result),
        EffectFailed, ResultUnavailable, StoreUnavailable, DecodeError."""
    async def execute_once_async(
        self,
        effect_type: EffectType | str,
        entity_id: str | int,
        fn: Callable[[], Any] | Callable[[EffectContext], Any],
        fingerprint: str | None = None,
        *,
        ttl: Seconds | None = None,
        lease: Seconds | None = None,
        in_progress: InProgress | None = None,
        wait_timeout: Seconds | None = None,
        executor: Executor | None = None,
    ) -> Outcome:
        """execute_once without blocking the event loop: Redis work in `executor`,
        an async fn awaited on this loop. Cancelling the caller does not stop a
        started effect. A call holds an executor thread from claim to commit."""
    def flush_journal(self) -> int:
        """Tries to commit every journaled result now; returns how many remain."""
    def journal_pending(self) -> int: ...
    def stats(self) -> dict[str, int]: ...
    def key(self, effect_type: EffectType | str, entity_id: str | int) -> str: ...
    def inspect(self, effect_type: EffectType | str, entity_id: str | int) -> dict[str, Any] | None:
        """The stored record (state, fencing_token, holder_id, fingerprint, result
        as bytes, error, lease_remaining, ttl_remaining), or None."""
    def clear(self, effect_type: EffectType | str, entity_id: str | int) -> bool:
        """Deletes the record so the effect runs once more."""

def wrapper_for(redis: Any) -> SideEffectWrapper:
    """The wrapper itself, or the one this process keeps for a Redis client."""

class ExecutionGuardAdapter:
    """The seed's adapters. No price: a market order. The order's entity id is
    its client_order_id, else a hash of its fields (identical orders within
    the TTL are one order)."""

    wrapper: SideEffectWrapper
    def __init__(self, redis_or_wrapper: Any, **options: Any) -> None: ...
    def wrap_order_placement(self, fn: Callable[..., Any], symbol: str, side: str,
                             quantity: float, price: float | None = None,
                             client_order_id: str | None = None, **call_options: Any) -> Outcome: ...
    def wrap_position_update(self, fn: Callable[..., Any], position_id: str,
                             **call_options: Any) -> Outcome: ...
    def wrap_pnl_write(self, fn: Callable[..., Any], pnl_id: str, **call_options: Any) -> Outcome: ...
    def wrap_ledger_write(self, fn: Callable[..., Any], entry_id: str,
                          **call_options: Any) -> Outcome: ...
    def wrap_trade_state_write(self, fn: Callable[..., Any], trade_id: str,
                               **call_options: Any) -> Outcome: ...

def wrap_order_placement(redis_client: Any, fn: Callable[..., Any], symbol: str, side: str,
                         quantity: float, price: float | None = None,
                         client_order_id: str | None = None, **call_options: Any) -> Outcome: ...
def wrap_position_update(redis_client: Any, fn: Callable[..., Any], position_id: str,
                         **call_options: Any) -> Outcome: ...
def wrap_pnl_write(redis_client: Any, fn: Callable[..., Any], pnl_id: str,
                   **call_options: Any) -> Outcome: ...
def wrap_ledger_write(redis_client: Any, fn: Callable[..., Any], entry_id: str,
                      **call_options: Any) -> Outcome: ...
def wrap_trade_state_write(redis_client: Any, fn: Callable[..., Any], trade_id: str,
                           **call_options: Any) -> Outcome: ...
def set_default_wrapper(redis_or_wrapper: Any, **options: Any) -> SideEffectWrapper:
    """The wrapper @idempotent uses when given no redis."""

def idempotent(effect_type: EffectType | str, key: Callable[..., str | int], *,
               redis: Any = None, fingerprint: Callable[..., str] | None = None,
               **call_options: Any) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """Decorator: the function runs at most once per key(*args, **kwargs) and
    returns an Outcome (executed, result); an async def gives an async function
    returning one. redis: a wrapper, a client, a zero-argument callable
    returning one, or None for set_default_wrapper()'s."""

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
