"""prodsafe.alerts (docs/python.md)."""

__all__: list[str] = []
