"""Adversarial review: a str that is not encodable as UTF-8 (a lone surrogate)
given where prodsafe takes a str raises prodsafe.InvalidArgument, never
pybind11's generic RuntimeError ("Unable to cast Python instance ...")."""

import pytest

import prodsafe
from prodsafe import EffectType, SideEffectWrapper

LONE = "\udc80"


@pytest.fixture
def wrapper(redis, tmp_path):
    return SideEffectWrapper(redis, journal_directory=str(tmp_path / "journal"))


def test_entity_id_with_a_lone_surrogate_is_invalid_argument(wrapper):
    ran = []
    with pytest.raises(prodsafe.InvalidArgument, match="entity_id"):
        wrapper.execute_once("X", "a" + LONE, lambda: ran.append(1))
    assert ran == []


def test_effect_type_str_with_a_lone_surrogate_is_invalid_argument(wrapper):
    with pytest.raises(prodsafe.InvalidArgument, match="effect_type"):
        wrapper.execute_once(LONE, "e", lambda: 1)


def test_journal_directory_with_a_lone_surrogate_is_invalid_argument(redis, tmp_path):
    with pytest.raises(prodsafe.InvalidArgument, match="journal_directory"):
        SideEffectWrapper(redis, journal_directory=str(tmp_path) + "/" + LONE)


def test_effect_type_compared_with_a_lone_surrogate_is_unequal():
    assert (EffectType("X") == LONE) is False
    assert (EffectType("X") != LONE) is True


def test_redis_command_argument_with_a_lone_surrogate_is_invalid_argument(redis):
    with pytest.raises(prodsafe.InvalidArgument, match="argument"):
        redis.set("k" + LONE, "v")
    with pytest.raises(prodsafe.InvalidArgument, match="argument"):
        redis.execute_command("SET", "k", LONE)


def test_keyword_names_with_a_lone_surrogate_are_invalid_argument(redis):
    with pytest.raises(prodsafe.InvalidArgument):
        SideEffectWrapper(redis, **{LONE: 1})
    with pytest.raises(prodsafe.InvalidArgument):
        prodsafe.Redis("redis://127.0.0.1:1", **{LONE: 1})
