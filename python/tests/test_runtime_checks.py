"""prodsafe.RedisRuntimeValidator: the seed's Phase 2 example and the
integration guide's "Startup Integration" snippet, and the checks finding
real problems on real servers."""

import logging
import types

import pytest
import redis
import redis as redis_py

import prodsafe
from prodsafe import RedisRuntimeValidator, ValidationLevel
from prodsafe.testing import RedisServer

# appendfsync always and no maxmemory: what the checks call safe.
HEALTHY = ["appendonly yes", "appendfsync always"]


def run_phase2_example(url):
    # The seed's Phase 2 usage example, verbatim but for the imports (above)
    # and the URL (the test's own server).
    redis_client = redis.from_url(url)
    validator = RedisRuntimeValidator(redis_client)

    # Validate on startup
    if validator.validate_on_startup():
        print("Redis configuration is safe")
    else:
        print("Redis configuration has issues")

    # Get detailed summary
    summary = validator.get_summary()
    print(f"Total checks: {summary['total_checks']}")
    print(f"Warnings: {summary['warning']}")
    print(f"Errors: {summary['error']}")
    return summary


def test_seed_phase2_example_on_a_healthy_server(capsys):
    with RedisServer(config=HEALTHY) as server:
        summary = run_phase2_example(server.url)
    out = capsys.readouterr().out
    assert "Redis configuration is safe" in out
    assert f"Total checks: {summary['total_checks']}" in out
    assert {"total_checks", "ok", "warning", "error", "critical", "results"} <= set(summary)
    assert summary["total_checks"] == len(summary["results"]) >= 8
    assert summary["ok"] + summary["warning"] + summary["error"] + summary["critical"] == \
        summary["total_checks"]
    assert summary["error"] == 0 and summary["critical"] == 0


def test_seed_phase2_example_on_a_server_without_persistence(capsys):
    with RedisServer() as server:  # prodsafe's test default: no AOF, no RDB
        summary = run_phase2_example(server.url)
    out = capsys.readouterr().out
    assert "Redis configuration has issues" in out
    assert summary["critical"] == 1
    persistence = [r for r in summary["results"] if r["name"] == "persistence"]
    assert persistence[0]["level"] == "CRITICAL"
    assert persistence[0]["remediation"]  # says what to change


def test_startup_integration_snippet(caplog):
    with RedisServer() as server:
        settings = types.SimpleNamespace(REDIS_URL=server.url)
        logger = logging.getLogger("app.startup")
        from prodsafe import MetricsCardinalityGuard

        # The integration guide's "Startup Integration" snippet, verbatim but
        # for the imports (`settings` and `logger` are the stand-ins above).
        # Initialize Redis
        redis_client = redis.from_url(settings.REDIS_URL)

        # Validate Redis configuration
        validator = RedisRuntimeValidator(redis_client)
        if not validator.validate_on_startup():
            logger.error("Redis configuration issues detected")

        # Initialize global metrics guard
        guard = MetricsCardinalityGuard(strict_mode=False)

    assert "Redis configuration issues detected" in caplog.text
    assert guard.strict_mode is False
    assert guard.validate_labels("order_latency", {"symbol": "BTCUSDT"}) == (True, [])


def levels(validator):
    return {result.name: result.level for result in validator.results}


def test_a_healthy_server_gets_the_levels_of_the_cpp_checks():
    with RedisServer(config=HEALTHY) as server:
        validator = RedisRuntimeValidator(prodsafe.Redis(server.url))
        assert validator.validate_on_startup() is True
    got = levels(validator)
    assert set(got) == {"persistence", "persistence_health", "eviction_policy",
                        "memory_headroom", "role", "version", "loading", "latency"}
    for name in ("persistence", "persistence_health", "eviction_policy", "role", "loading"):
        assert got[name] == ValidationLevel.OK, name
    assert max(got.values()) < ValidationLevel.ERROR
    persistence = next(r for r in validator.results if r.name == "persistence")
    assert persistence.observed == "appendonly=yes appendfsync=always"
    assert persistence.remediation == ""
    assert persistence.node == ""  # a one-server URL
    assert persistence.to_dict()["level"] == "OK"


def test_allkeys_lru_fails_startup_with_a_critical_eviction_check():
    config = HEALTHY + ["maxmemory 100mb", "maxmemory-policy allkeys-lru"]
    with RedisServer(config=config) as server:
        validator = RedisRuntimeValidator(redis_py.from_url(server.url))
        assert validator.validate_on_startup() is False
        summary = validator.get_summary()
    eviction = next(r for r in validator.results if r.name == "eviction_policy")
    assert eviction.level == ValidationLevel.CRITICAL
    assert "allkeys-lru" in eviction.observed
    assert "noeviction" in eviction.remediation
    assert summary["critical"] == 1
    assert levels(validator)["persistence"] == ValidationLevel.OK


def test_volatile_lru_is_an_error_and_everysec_a_warning_unless_strict():
    config = ["appendonly yes", "appendfsync everysec", "maxmemory 100mb",
              "maxmemory-policy volatile-lru"]
    with RedisServer(config=config) as server:
        lenient = RedisRuntimeValidator(prodsafe.Redis(server.url), latency_samples=0)
        strict = RedisRuntimeValidator(prodsafe.Redis(server.url), strict_durability=True,
                                       latency_samples=0)
        assert lenient.validate_on_startup() is False
        strict.run()
        # Only CRITICAL fails when asked for.
        assert lenient.validate_on_startup(fail_at=ValidationLevel.CRITICAL) is True
    assert levels(lenient)["eviction_policy"] == ValidationLevel.ERROR
    assert levels(lenient)["persistence"] == ValidationLevel.WARNING
    assert levels(strict)["persistence"] == ValidationLevel.ERROR
    assert "latency" not in levels(lenient)  # latency_samples=0 skips it


def test_summary_counts_match_the_results():
    with RedisServer(config=["maxmemory 100mb", "maxmemory-policy allkeys-random"]) as server:
        validator = RedisRuntimeValidator(prodsafe.Redis(server.url))
        summary = validator.get_summary()  # runs the checks first
    counted = {"ok": 0, "warning": 0, "error": 0, "critical": 0}
    for result in validator.results:
        counted[result.level.name.lower()] += 1
    assert {key: summary[key] for key in counted} == counted
    assert summary["critical"] == 2  # persistence and eviction
    assert [r["name"] for r in summary["results"]] == [r.name for r in validator.results]


def test_results_reach_the_given_registry():
    registry = prodsafe.Registry()
    with RedisServer() as server:
        RedisRuntimeValidator(prodsafe.Redis(server.url), metrics=registry,
                              latency_samples=1).validate_on_startup()
    text = registry.serialize()
    assert 'prodsafe_runtime_checks{level="critical"} 1' in text
    assert 'prodsafe_runtime_check_level{check="persistence"} 3' in text


def test_a_server_that_does_not_answer_fails_startup_without_raising(redis_server):
    # Paused (SIGSTOP), not killed: a killed server's port could be taken by
    # a server this test did not start.
    validator = RedisRuntimeValidator(prodsafe.Redis(redis_server.url, connect_timeout=0.3,
                                                     command_timeout=0.3))
    redis_server.pause()
    try:
        assert validator.validate_on_startup() is False
        with pytest.raises(prodsafe.StoreUnavailable):  # Timeout is one
            validator.run()
    finally:
        redis_server.resume()
    assert validator.validate_on_startup() is False  # answers again: no persistence


@pytest.mark.parametrize("redis_arg", ["redis://127.0.0.1:6379", 42, None])
def test_a_connection_that_is_no_client_is_wrong_type(redis_arg):
    with pytest.raises(prodsafe.WrongType):
        RedisRuntimeValidator(redis_arg)


@pytest.mark.parametrize("options, error", [
    ({"memory_warning_free": 2}, prodsafe.InvalidArgument),
    ({"memory_warning_free": "lots"}, prodsafe.WrongType),
    ({"memory_warning_free": 0.05, "memory_error_free": 0.1}, prodsafe.InvalidArgument),
    ({"latency_samples": -1}, prodsafe.InvalidArgument),
    ({"latency_p99_warning": -1}, prodsafe.InvalidArgument),
    ({"strict_durability": "yes"}, prodsafe.WrongType),
    ({"metrics": {}}, prodsafe.WrongType),
    ({"no_such_option": 1}, prodsafe.InvalidArgument),
])
def test_bad_options_are_refused(redis, options, error):
    with pytest.raises(error):
        RedisRuntimeValidator(redis, **options)


def test_fail_level_by_name_and_bad_fail_levels(redis_server):
    validator = RedisRuntimeValidator(prodsafe.Redis(redis_server.url), latency_samples=0)
    assert validator.validate_on_startup(fail_at="critical") is False  # persistence CRITICAL
    with pytest.raises(prodsafe.InvalidArgument):
        validator.validate_on_startup(fail_at="fatal")
    with pytest.raises(prodsafe.WrongType):
        validator.validate_on_startup(fail_at=2)


def test_a_fail_level_that_is_not_utf8_encodable_is_invalid_argument(redis):
    with pytest.raises(prodsafe.InvalidArgument):
        RedisRuntimeValidator(redis).validate_on_startup(fail_at="\ud800")
    with pytest.raises(prodsafe.InvalidArgument):
        RedisRuntimeValidator(redis, **{"\ud800": 1})


def test_one_validator_shared_by_threads(redis_server):
    import threading

    validator = RedisRuntimeValidator(redis.from_url(redis_server.url), latency_samples=2)
    answers, summaries = [], []

    def check():
        answers.append(validator.validate_on_startup())
        summaries.append(validator.get_summary()["total_checks"])
        assert len(validator.results) == 8

    threads = [threading.Thread(target=check) for _ in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert answers == [False] * 6  # no persistence on the test server
    assert summaries == [8] * 6
