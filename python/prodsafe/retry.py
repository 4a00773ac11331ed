"""prodsafe.retry (docs/python.md)."""

__all__: list[str] = []
