"""prodsafe.breaker (docs/python.md)."""

__all__: list[str] = []
