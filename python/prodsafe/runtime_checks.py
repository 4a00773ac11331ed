"""prodsafe.runtime_checks (docs/python.md)."""

__all__: list[str] = []
