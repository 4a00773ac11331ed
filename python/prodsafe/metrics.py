"""prodsafe.metrics (docs/python.md)."""

__all__: list[str] = []
