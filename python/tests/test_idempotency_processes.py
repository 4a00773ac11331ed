"""Exactly once under races and crashes: 16 threads, 8 processes, a worker
killed mid-effect, Redis killed between the effect and its commit, fork."""

import collections
import multiprocessing
import os
import random
import signal
import subprocess
import sys
import threading
import time

import pytest

import prodsafe
from prodsafe import EffectType, SideEffectWrapper
from prodsafe.testing import RedisServer

import _idem_worker

HERE = os.path.dirname(os.path.abspath(__file__))


def poll(predicate, timeout=20.0, what="the condition"):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.01)
    raise AssertionError(f"timed out waiting for {what}")


def test_16_threads_racing_run_each_effect_once(redis, tmp_path):
    wrapper = SideEffectWrapper(redis, in_progress="wait", wait_timeout=20,
                                journal_directory=str(tmp_path))
    ids = [f"pos-{i}" for i in range(25)]
    runs = collections.Counter()
    lock = threading.Lock()
    start = threading.Barrier(16)
    seen = collections.defaultdict(list)
    errors = []

    def worker(seed):
        order = ids[:]
        random.Random(seed).shuffle(order)
        start.wait(10)
        try:
            for entity_id in order:
                def effect(entity_id=entity_id):
                    with lock:
                        runs[entity_id] += 1
                    redis.execute_command("INCR", f"runs:{entity_id}")
                    time.sleep(0.001)  # widen the window for a duplicate
                    return {"id": entity_id, "thread": seed}

                outcome = wrapper.execute_once(EffectType.POSITION_UPDATE, entity_id, effect)
                with lock:
                    seen[entity_id].append((outcome.executed, outcome.result))
        except Exception as error:  # noqa: BLE001 - reported below
            errors.append(error)

    threads = [threading.Thread(target=worker, args=(n,)) for n in range(16)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert not errors
    for entity_id in ids:
        assert runs[entity_id] == 1, entity_id
        assert redis.get(f"runs:{entity_id}") == b"1"
        outcomes = seen[entity_id]
        assert len(outcomes) == 16
        assert sum(executed for executed, _ in outcomes) == 1
        assert len({str(result) for _, result in outcomes}) == 1  # all got the same result


def test_8_processes_racing_run_each_effect_once(redis_server, redis, tmp_path):
    context = multiprocessing.get_context("spawn")
    start = context.Event()
    results = context.Queue()
    ids = [f"proc-{i}" for i in range(20)]
    processes = []
    for n in range(8):
        order = ids[:]
        random.Random(n).shuffle(order)
        process = context.Process(target=_idem_worker.race,
                                  args=(redis_server.url, str(tmp_path), order, start, results))
        process.start()
        processes.append(process)
    start.set()
    gathered = [results.get(timeout=60) for _ in processes]
    for process in processes:
        process.join(30)
        assert process.exitcode == 0
    assert len({pid for pid, _ in gathered}) == 8
    executed_by = collections.Counter()
    results_by = collections.defaultdict(set)
    for pid, outcomes in gathered:
        assert len(outcomes) == len(ids)
        for entity_id, executed, result in outcomes:
            executed_by[entity_id] += executed
            results_by[entity_id].add((result["pid"], result["run"]))
            if executed:
                assert result["pid"] == pid
    for entity_id in ids:
        assert redis.get(f"runs:{entity_id}") == b"1", entity_id  # the effect's own count
        assert len(redis.execute_command("LRANGE", f"who:{entity_id}", 0, -1)) == 1
        assert executed_by[entity_id] == 1
        assert len(results_by[entity_id]) == 1  # every process got the one result


def test_a_worker_killed_mid_effect_is_recovered_with_a_higher_token(redis_server, redis,
                                                                    tmp_path):
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(sys.path))
    worker = subprocess.Popen([sys.executable, os.path.join(HERE, "_idem_worker.py"), "hang",
                               redis_server.url, str(tmp_path), "o-kill"], env=env)
    try:
        ran = poll(lambda: redis.execute_command("LRANGE", "ran:o-kill", 0, -1), 30,
                   "the worker to start its effect")
        pid, token = (int(part) for part in ran[0].decode().split(":"))
        assert pid == worker.pid
        wrapper = SideEffectWrapper(redis, in_progress="throw", journal_directory=str(tmp_path))
        with pytest.raises(prodsafe.AlreadyInProgress):  # the live worker holds it
            wrapper.execute_once(EffectType.ORDER_PLACEMENT, "o-kill", lambda: "too early")
    finally:
        worker.send_signal(signal.SIGKILL)
        worker.wait(10)
    contexts = []
    recovered = SideEffectWrapper(redis, in_progress="wait", wait_timeout=10,
                                  journal_directory=str(tmp_path))
    outcome = recovered.execute_once(EffectType.ORDER_PLACEMENT, "o-kill",
                                     lambda ctx: contexts.append(ctx) or "recovered")
    assert outcome.executed and outcome.recovered and contexts[0].recovering
    assert outcome.fencing_token > token
    assert contexts[0].fencing_token == outcome.fencing_token
    again = recovered.execute_once(EffectType.ORDER_PLACEMENT, "o-kill", lambda: "third")
    assert again == (False, "recovered")
    assert len(redis.execute_command("LRANGE", "ran:o-kill", 0, -1)) == 1


def test_redis_killed_between_effect_and_commit_is_committed_from_the_journal(tmp_path):
    with RedisServer(config=["appendonly yes", "appendfsync always"]) as server:
        client = prodsafe.Redis(server.url, connect_timeout=0.2, command_timeout=1,
                                reconnect_backoff_initial=0.01, reconnect_backoff_max=0.05)
        wrapper = SideEffectWrapper(client, commit_attempts=2, commit_retry_delay=0.01,
                                    journal_dir=tmp_path / "journal")
        runs = []

        def place():
            runs.append(1)
            server.kill()  # Redis dies after the effect ran, before its commit
            return {"order_id": "o-redis", "status": "filled"}

        outcome = wrapper.execute_once(EffectType.ORDER_PLACEMENT, "o-redis", place)
        assert outcome.executed and outcome.commit_pending
        assert outcome.result == {"order_id": "o-redis", "status": "filled"}
        assert wrapper.journal_pending() == 1
        assert wrapper.stats()["commit_pending"] == 1

        server.restart()  # the claim survived (appendfsync always); the result is journaled
        again = wrapper.execute_once(EffectType.ORDER_PLACEMENT, "o-redis",
                                     lambda: runs.append(1) or "second run")
        assert again.executed is False
        assert again.result == {"order_id": "o-redis", "status": "filled"}
        assert len(runs) == 1
        poll(lambda: wrapper.flush_journal() == 0, 10, "the journal to be committed")
        assert wrapper.journal_pending() == 0
        stored = client.execute_command("HGET", "effect:ORDER_PLACEMENT:o-redis", "result")
        assert stored == b'{"order_id":"o-redis","status":"filled"}'
        # another process's wrapper sees the committed result
        other = SideEffectWrapper(prodsafe.Redis(server.url), journal_dir=tmp_path / "other")
        assert other.execute_once(EffectType.ORDER_PLACEMENT, "o-redis",
                                  lambda: runs.append(1)) == (False, outcome.result)
        assert len(runs) == 1


def test_redis_down_at_claim_runs_nothing(redis_server, tmp_path):
    client = prodsafe.Redis(redis_server.url, connect_timeout=0.2,
                            reconnect_backoff_initial=0)
    wrapper = SideEffectWrapper(client, journal_dir=tmp_path)
    redis_server.kill()
    runs = []
    with pytest.raises(prodsafe.StoreUnavailable) as caught:
        wrapper.execute_once("X", "down", lambda: runs.append(1))
    assert caught.value.retryable and not runs
    fail_open = SideEffectWrapper(client, journal_dir=tmp_path,
                                  per_type={"METRIC": {"fail_open": True}})
    outcome = fail_open.execute_once("METRIC", "down", lambda: "ran anyway")
    assert outcome.unprotected and outcome.result == "ran anyway"


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs fork")
def test_a_forked_child_gets_its_own_wrapper(redis_server, tmp_path):
    import redis as redis_py

    client = redis_py.from_url(redis_server.url)
    parents = prodsafe.wrapper_for(client)
    parents.execute_once("X", "before-fork", lambda: 1)
    explicit = SideEffectWrapper(client, journal_dir=tmp_path)
    pid = os.fork()
    if pid == 0:  # the child
        code = 1
        try:
            try:
                explicit.execute_once("X", "child-explicit", lambda: 1)
                code = 2  # the parent's wrapper must refuse
            except prodsafe.InvalidArgument:
                mine = prodsafe.wrapper_for(client)
                outcome = prodsafe.wrap_pnl_write(client, lambda: os.getpid(), "child")
                dup = mine.execute_once("X", "before-fork", lambda: 2)
                ok = mine is not parents and outcome.executed and dup == (False, 1)
                code = 0 if ok else 3
        finally:
            os._exit(code)
    _, status = os.waitpid(pid, 0)
    assert os.WEXITSTATUS(status) == 0
    assert parents.execute_once(EffectType.PNL_WRITE, "child", lambda: 0).result == pid
