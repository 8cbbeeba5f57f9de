"""AMConfig: JSON round-trip, bounds on every number, schedules, messages that name the field."""

import numpy as np
import pytest
from pydantic import ValidationError

from meiscope.engine import AMConfig
from meiscope.engine.objectives import unit
from meiscope.engine.options import ConfigError, build_config, option_table, parse_assignment
from meiscope.engine.schedules import Linear, RandomRange, values


def test_config_round_trips_through_json():
    config = AMConfig(
        method="transform_distribution", unit=[3, 7, 11], samples=2, seed=5,
        optimizer={"name": "mei", "lr": {"kind": "linear", "start": 0.1, "end": 0.01}},
        grad={"gamma": {"kind": "random", "low": 0.5, "high": 1.5}}, post={"blur_sigma": 0.5, "max_norm": 40.0},
        transform={"kind": "cnn", "kernel_size": 7, "layers": 3},
    )
    again = AMConfig.model_validate_json(config.model_dump_json())
    assert again == config
    assert isinstance(again.optimizer.lr, Linear) and isinstance(again.grad.gamma, RandomRange)


def test_objective_composes_and_round_trips():
    objective = unit(3) - 0.5 * unit(7) + 2 * unit(10, layer="z1", stat="std")
    assert [(t.layer, t.stat, t.unit, t.weight) for t in objective.terms] == [
        ("z2", "mean", 3, 1.0), ("z2", "mean", 7, -0.5), ("z1", "std", 10, 2.0)]
    config = AMConfig(objective=objective)
    assert AMConfig.model_validate_json(config.model_dump_json()).objective == objective
    assert config.objective.main.unit == 10  # the largest |weight|


def test_config_is_frozen():
    config = AMConfig()
    with pytest.raises(ValidationError):
        config.steps = 5
    with pytest.raises(ValidationError):
        config.optimizer.lr = 1.0


@pytest.mark.parametrize("data, field", [
    ({"grad": {"gamma": 9}}, "grad.gamma"),
    ({"optimizer": {"lr": {"kind": "linear", "start": 0.1, "end": 500}}}, "optimizer.lr"),
    ({"obj": {"elbo_weight": {"kind": "random", "low": 2, "high": 1}}}, "obj.elbo_weight"),
    ({"steps": 0}, "steps"),
    ({"transform": {"kernel_size": 4}}, "transform.kernel_size"),
    ({"method": "deepdream"}, "method"),
    ({"pre": {"jiter": 2}}, "pre.jiter"),
    ({"unit": [1, 1]}, "unit"),
    ({"distribution": {"sigma": 0}}, "distribution.sigma"),
])
def test_bad_configs_name_the_field(data, field):
    with pytest.raises(ConfigError) as exc:
        build_config(data)
    assert str(exc.value).startswith(field + ":")


def test_unit_range_is_the_models_layer(shipped):
    from meiscope.engine.model_check import ConfigMismatch, check_config

    check_config(AMConfig(unit=1000, layer="z1"), shipped)
    with pytest.raises(ConfigMismatch, match=r"^unit: must lie in 0\.\.249 for layer z2, got \[9999\]$"):
        check_config(AMConfig(unit=9999), shipped)
    with pytest.raises(ConfigMismatch, match="^layer: must be one of z2, z1"):
        check_config(AMConfig(layer="fc1"), shipped)
    with pytest.raises(ValidationError, match="units must lie in"):
        AMConfig(unit=-1)


def test_schedules_take_the_right_values():
    rng = np.random.default_rng(0)
    lin = values(Linear(start=1.0, end=0.0), 11, rng)
    assert lin[0] == 1.0 and lin[-1] == 0.0 and lin[5] == pytest.approx(0.5)
    rand = values(RandomRange(low=0.2, high=0.4), 1000, rng)
    assert rand.min() >= 0.2 and rand.max() <= 0.4 and rand.std() > 0.03
    assert (values(0.3, 4, rng) == 0.3).all()


def test_set_assignments_nest_and_parse_json():
    assert parse_assignment("optimizer.lr=0.05") == {"optimizer": {"lr": 0.05}}
    assert parse_assignment('grad.gamma={"kind": "linear", "start": 1, "end": 0}')["grad"]["gamma"]["kind"] == "linear"
    assert parse_assignment("method=pixel") == {"method": "pixel"}
    with pytest.raises(ConfigError):
        parse_assignment("steps")


def test_every_number_has_a_bound():
    for name, _default, allowed, _ in option_table():
        if name in ("unit", "objective", "layer"):  # checked against the loaded model (engine.model_check)
            continue
        assert allowed or name.endswith(("learn_sigma", "normalise")), name
