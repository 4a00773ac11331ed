"""Helpers shared by the Python tests (not a test module)."""

import threading
import time


def poll(condition, timeout=10.0, interval=0.01):
    """Waits for condition() to be true, up to `timeout` seconds; returns its
    last answer."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(interval)
    return condition()


class Recorder:
    """An alert hook remembering its calls (from any thread)."""

    def __init__(self):
        self.calls = []
        self.lock = threading.Lock()

    def __call__(self, event_type, message, context):
        with self.lock:
            self.calls.append((event_type, message, context))

    def events(self):
        with self.lock:
            return [call[0] for call in self.calls]
