"""prodsafe.idempotency (docs/python.md)."""

__all__: list[str] = []
