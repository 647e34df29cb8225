from dataclasses import dataclass, field

import pytest

from celltext.config import Config, ConfigError, require


@dataclass
class Inner(Config):
    width: int = 4


@dataclass
class Outer(Config):
    name: str = "x"
    size: tuple[int, int, int] = (8, 8, 8)
    rate: float = 0.1
    inner: Inner = field(default_factory=Inner)
    tag: str | None = None

    def validate(self) -> None:
        require(self.rate > 0, "rate", "must be > 0")


def test_round_trip_yaml_and_json(tmp_path):
    cfg = Outer(name="a", size=(1, 2, 3), inner=Inner(width=7))
    for suffix in (".yaml", ".json"):
        path = cfg.save(tmp_path / f"c{suffix}")
        back = Outer.load(path)
        assert back == cfg
        assert back.config_hash() == cfg.config_hash()


def test_hash_changes_with_values():
    assert Outer().config_hash() != Outer(rate=0.2).config_hash()
    assert Outer().config_hash() == Outer().config_hash()


def test_errors_name_the_field():
    with pytest.raises(ConfigError, match="^rate:"):
        Outer(rate=-1.0)
    with pytest.raises(ConfigError, match="^bogus:"):
        Outer.from_dict({"bogus": 1})
    with pytest.raises(ConfigError, match=r"^inner\.width:"):
        Outer.from_dict({"inner": {"width": "wide"}})
    with pytest.raises(ConfigError, match=r"^size:"):
        Outer.from_dict({"size": [1, 2]})


def test_lists_become_tuples_and_replace_validates():
    cfg = Outer.from_dict({"size": [2, 3, 4], "rate": 1})
    assert cfg.size == (2, 3, 4) and isinstance(cfg.rate, float)
    with pytest.raises(ConfigError):
        cfg.replace(rate=0.0)
