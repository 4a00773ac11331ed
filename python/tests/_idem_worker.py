"""Worker processes for test_idempotency_processes.py (spawned by
multiprocessing or run with `python _idem_worker.py ...`): each makes its own
wrapper, as workers must (wrappers do not survive fork)."""

from __future__ import annotations

import os
import sys
import tempfile
import time


def race(url: str, journal: str, ids: list[str], start, results) -> None:
    """Runs every id once; the effect counts its own runs in Redis."""
    import prodsafe

    client = prodsafe.Redis(url)
    wrapper = prodsafe.SideEffectWrapper(client, in_progress="wait", wait_timeout=20,
                                         journal_directory=journal)
    counter = prodsafe.Redis(url)
    start.wait(30)
    mine = []
    for entity_id in ids:
        def effect(ctx, entity_id=entity_id):
            runs = counter.execute_command("INCR", f"runs:{entity_id}")
            counter.execute_command("RPUSH", f"who:{entity_id}", os.getpid())
            time.sleep(0.002)  # long enough for the others to meet the claim
            return {"id": entity_id, "pid": os.getpid(), "run": runs}

        outcome = wrapper.execute_once(prodsafe.EffectType.POSITION_UPDATE, entity_id, effect)
        mine.append((entity_id, outcome.executed, outcome.result))
    results.put((os.getpid(), mine))


def hang_in_effect(url: str, journal: str, entity_id: str) -> None:
    """Claims the effect with a 1 s lease (renewed while it lives), says so in
    Redis with its fencing token, and never returns: killed by the test."""
    import prodsafe

    client = prodsafe.Redis(url)
    wrapper = prodsafe.SideEffectWrapper(client, lease=1, journal_directory=journal)

    def effect(ctx):
        client.execute_command("RPUSH", f"ran:{entity_id}", f"{os.getpid()}:{ctx.fencing_token}")
        while True:
            time.sleep(1)

    wrapper.execute_once(prodsafe.EffectType.ORDER_PLACEMENT, entity_id, effect)


if __name__ == "__main__":
    if sys.argv[1] == "hang":
        hang_in_effect(sys.argv[2], sys.argv[3], sys.argv[4])
    else:
        raise SystemExit(f"unknown command {sys.argv[1]!r} (tmp {tempfile.gettempdir()})")
