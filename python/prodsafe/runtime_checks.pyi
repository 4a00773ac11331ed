import enum
from typing import Any

from prodsafe.client import Redis
from prodsafe.metrics import Registry

class ValidationLevel(enum.IntEnum):
    """A check's severity, ordered: OK < WARNING < ERROR < CRITICAL."""
    OK = 0
    WARNING = 1
    ERROR = 2
    CRITICAL = 3

class CheckResult:
    """One finding of RedisRuntimeValidator, about one server (node) or a topology."""
    @property
    def name(self) -> str: ...
    @property
    def level(self) -> ValidationLevel: ...
    @property
    def observed(self) -> str: ...
    @property
    def expected(self) -> str: ...
    @property
    def message(self) -> str: ...
    @property
    def remediation(self) -> str: ...
    @property
    def node(self) -> str: ...
    @property
    def node_role(self) -> str: ...
    def to_dict(self) -> dict[str, str]:
        """The fields as a dict, level as its name ("OK", "WARNING", ...)."""

class RedisRuntimeValidator:
    """Checks that Redis keeps prodsafe's records: persistence, eviction policy,
    memory headroom, role, version, loading, latency (and topologies)."""
    def __init__(self, redis: Redis | Any, *, strict_durability: bool = False,
                 memory_warning_free: float = 0.20, memory_error_free: float = 0.10,
                 memory_critical_free: float = 0.05, latency_samples: int = 20,
                 latency_p99_warning: float = 0.01,
                 metrics: Registry | None = None) -> None: ...
    def run(self) -> list[CheckResult]:
        """Runs every check; raises StoreUnavailable when Redis cannot be reached."""
    def validate_on_startup(self, fail_at: ValidationLevel = ValidationLevel.ERROR) -> bool:
        """Runs and logs the checks; False when any is at or above fail_at. Never raises."""
    def get_summary(self) -> dict[str, Any]:
        """{'total_checks', 'ok', 'warning', 'error', 'critical', 'results'} of the last run."""
    @property
    def results(self) -> list[CheckResult]: ...

__all__ = ["CheckResult", "RedisRuntimeValidator", "ValidationLevel"]
