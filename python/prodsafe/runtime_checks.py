"""prodsafe.runtime_checks: the Redis production-safety validator
(docs/python.md, docs/operations.md for the checks).

    from prodsafe import RedisRuntimeValidator

    validator = RedisRuntimeValidator(redis_client)
    if not validator.validate_on_startup():
        logger.error("Redis configuration issues detected")
    summary = validator.get_summary()  # total_checks, ok, warning, error, critical, results
"""

from prodsafe._prodsafe import CheckResult, RedisRuntimeValidator, ValidationLevel

__all__ = ["CheckResult", "RedisRuntimeValidator", "ValidationLevel"]
