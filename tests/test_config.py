import tomllib

import pytest

from mlplab import ConfigError, DataConfig, ModelConfig, RunConfig, TrainConfig, load_config
from mlplab.api import resolve_config
from mlplab.config import describe_keys, parse_value
from mlplab.recipes import list_recipes, load_recipe, recipe_names


def test_defaults_are_valid_and_resolved():
    config = RunConfig()
    assert config.data.dataset == "digits"
    assert config.model.hidden == (128, 64)
    assert config.train.weight_decay == 0.0


def test_adamw_gets_keras_default_weight_decay_unless_set():
    assert TrainConfig(optimizer="adamw").weight_decay == 0.004
    assert TrainConfig(optimizer="adamw", weight_decay=0.05).weight_decay == 0.05


def test_toml_round_trip_keeps_every_value(tmp_path):
    config = RunConfig(
        name="x",
        description='quotes " and \\ backslash',
        data=DataConfig(scaling="centered", validation="test"),
        model=ModelConfig(hidden=(), activation="tanh", dropout=0.5, batch_norm=True),
        train=TrainConfig(optimizer="sgd", momentum=0.9, nesterov=True, schedule="one-cycle"),
    )
    path = tmp_path / "c.toml"
    path.write_text(config.to_toml(meta={"seed": 1, "command": "mlplab train"}))
    assert load_config(path) == config
    assert "hidden = []" in path.read_text()


def test_lists_are_written_on_one_line():
    assert "hidden = [128, 64]" in RunConfig().to_toml()


def test_ints_are_accepted_for_floats_and_lists_become_tuples():
    config = RunConfig.from_dict({"model": {"hidden": [3, 2], "l2": 0}})
    assert config.model.hidden == (3, 2)
    assert isinstance(config.model.l2, float)


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"train": {"epoch": 3}}, "unknown key 'train.epoch' (did you mean 'train.epochs'?)"),
        ({"trian": {}}, "unknown key 'trian' (did you mean 'train'?)"),
        (
            {"train": {"learning_rate": -0.1}},
            "train.learning_rate = -0.1 is not valid: must be > 0",
        ),
        ({"train": {"batch_size": 0}}, "train.batch_size = 0 is not valid: must be > 0"),
        ({"train": {"epochs": "ten"}}, 'train.epochs = "ten" is not valid: expected an integer'),
        ({"train": {"epochs": 2.5}}, "expected an integer"),
        ({"train": {"nesterov": 1}}, "expected true or false"),
        ({"model": {"dropout": 1.0}}, "model.dropout = 1.0 is not valid: must be >= 0 and < 1"),
        ({"model": {"hidden": [64, 0]}}, "every layer size must be > 0"),
        ({"model": {"hidden": "64"}}, "expected a list of integers"),
        (
            {"model": {"activation": "rellu"}},
            "choose one of sigmoid, tanh, relu, gelu, elu, selu, leaky_relu (did you mean 'relu'?)",
        ),
        ({"data": {"scaling": "minmax"}}, "choose one of unit, centered, standardize"),
        ({"data": {"validation": 1.0}}, 'must be a fraction in [0, 1), "test", or a dataset path'),
        ({"data": {"validation": " "}}, 'must be a fraction in [0, 1), "test", or a dataset path'),
        ({"data": {"image_size": [28]}}, "must be [] or [height, width]"),
        ({"data": {"color": "grey"}}, "choose one of auto, grayscale, rgb"),
        ({"train": {"momentum": 0.9}}, "momentum applies to sgd and rmsprop"),
        ({"train": {"optimizer": "adam", "nesterov": True}}, "needs optimizer 'sgd'"),
        ({"train": {"optimizer": "sgd", "decay": 1e-6, "schedule": "cosine"}}, "train.decay"),
        ({"train": 3}, "[train] must be a table"),
        ({"name": ""}, "name"),
    ],
)
def test_bad_values_name_the_key_and_what_is_valid(data, message):
    with pytest.raises(ConfigError) as caught:
        RunConfig.from_dict(data)
    assert message in str(caught.value)
    assert "\n" not in str(caught.value)


def test_empty_hidden_list_is_softmax_regression():
    assert RunConfig.from_dict({"model": {"hidden": []}}).model.hidden == ()


def test_overrides_from_strings_and_mappings():
    config = RunConfig().with_overrides(
        ["train.epochs=3", "model.hidden=[32]", "model.activation=tanh", 'data.validation="test"']
    )
    assert (config.train.epochs, config.model.hidden) == (3, (32,))
    assert (config.model.activation, config.data.validation) == ("tanh", "test")
    assert RunConfig().with_overrides({"train.seed": 7}).train.seed == 7


def test_bad_overrides():
    with pytest.raises(ConfigError, match="expected KEY=VALUE"):
        RunConfig().with_overrides(["train.epochs"])
    with pytest.raises(ConfigError, match="did you mean 'train.batch_size'"):
        RunConfig().with_overrides(["train.batchsize=3"])
    with pytest.raises(ConfigError, match="unknown key 'foo'"):
        RunConfig().with_overrides(["foo=1"])


def test_parse_value_reads_toml_or_falls_back_to_text():
    assert parse_value("3") == 3
    assert parse_value("0.5") == 0.5
    assert parse_value("[1, 2]") == [1, 2]
    assert parse_value("true") is True
    assert parse_value("relu") == "relu"


def test_load_config_errors_name_the_file(tmp_path):
    with pytest.raises(ConfigError, match="nope.toml: no such config file"):
        load_config(tmp_path / "nope.toml")
    bad = tmp_path / "bad.toml"
    bad.write_text("x = [")
    with pytest.raises(ConfigError, match="bad.toml: invalid TOML"):
        load_config(bad)
    typo = tmp_path / "typo.toml"
    typo.write_text("[model]\nhiden = [3]\n")
    with pytest.raises(ConfigError, match=r"typo.toml: unknown key 'model.hiden' \(did you mean"):
        load_config(typo)
    with pytest.raises(ConfigError, match="cannot read config file"):
        load_config(tmp_path)


def test_config_file_name_defaults_to_the_file_stem(tmp_path):
    path = tmp_path / "my-experiment.toml"
    path.write_text("[train]\nepochs = 2\n")
    assert load_config(path).name == "my-experiment"


def test_every_bundled_recipe_loads_and_says_what_it_is():
    assert "digits-mlp" in recipe_names()
    for name, description in list_recipes():
        assert load_recipe(name).name == name
        assert description


def test_resolve_config_accepts_recipe_path_dict_and_none(tmp_path):
    assert resolve_config().name == "digits-mlp"
    assert resolve_config("digits-softmax").model.hidden == ()
    path = tmp_path / "c.toml"
    path.write_text(RunConfig(name="c").to_toml())
    assert resolve_config(path).name == "c"
    assert resolve_config({"train": {"epochs": 4}}).train.epochs == 4
    with pytest.raises(
        ConfigError, match="unknown recipe 'digits-mpl' \\(did you mean 'digits-mlp'"
    ):
        resolve_config("digits-mpl")


def test_describe_keys_covers_every_field_with_help():
    rows = describe_keys()
    assert {key for key, _, _ in rows} >= {"train.epochs", "model.hidden", "data.scaling"}
    assert all(help_text for _, _, help_text in rows)
    # defaults shown are valid TOML values
    for _, default, _ in rows:
        tomllib.loads(f"v = {default}")


def test_a_changed_recipe_says_what_changed_in_its_description():
    recipe = resolve_config("digits-mlp")
    changed = resolve_config(
        "digits-mlp", ["train.epochs=20", "model.hidden=[64, 64]", 'model.activation="tanh"']
    )
    assert changed.description == (
        f"{recipe.description}; changed: model.hidden = [64, 64], "
        'model.activation = "tanh", train.epochs = 20'
    )
    assert changed.differences(recipe) == [
        ("model.hidden", [64, 64]),
        ("model.activation", "tanh"),
        ("train.epochs", 20),
    ]
    # The recipe's own value, or a description of one's own: nothing to add.
    assert resolve_config("digits-mlp", {"train.epochs": 50}).description == recipe.description
    mine = resolve_config("digits-mlp", {"train.epochs": 5, "description": "mine"})
    assert mine.description == "mine"


def test_settings_one_schedule_or_optimizer_reads_are_unread_beside_the_others():
    assert TrainConfig().unread_keys() == [
        "momentum",
        "nesterov",
        "decay",
        "step_epochs",
        "step_factor",
        "plateau_patience",
        "min_learning_rate",
        "warmup_epochs",
        "teacher_temperature",
        "teacher_weight",
    ]
    plateau = TrainConfig(optimizer="sgd", schedule="plateau", teacher="runs/x")
    assert plateau.unread_keys() == ["step_epochs", "warmup_epochs"]
    assert "warmup_epochs" not in TrainConfig(schedule="cosine").unread_keys()


def test_a_value_of_its_own_that_training_will_not_read_is_said_not_refused():
    assert TrainConfig(schedule="step", step_epochs=5).unused_settings() == []
    assert TrainConfig(step_epochs=10, step_factor=0.1).unused_settings() == []  # defaults
    constant = TrainConfig(step_epochs=5, warmup_epochs=1.5)
    assert constant.unused_settings() == [
        'train.step_epochs = 5 is not used: it applies to train.schedule "step" '
        '(this one is "constant")',
        'train.warmup_epochs = 1.5 is not used: it applies to train.schedule "cosine" '
        '(this one is "constant")',
    ]
    # Switching a step recipe's schedule on the command line still works.
    step = RunConfig(train=TrainConfig(schedule="step", step_epochs=3, step_factor=0.5))
    cosine = step.with_overrides(["train.schedule=cosine"])
    assert [line.split(" is ")[0] for line in cosine.train.unused_settings()] == [
        "train.step_epochs = 3",
        "train.step_factor = 0.5",
    ]
    plateau = step.with_overrides(["train.schedule=plateau"])
    assert [line.split(" is ")[0] for line in plateau.train.unused_settings()] == [
        "train.step_epochs = 3"
    ]


def test_numpy_scalars_and_arrays_become_plain_values():
    import numpy as np

    train = TrainConfig(batch_size=np.int64(64), learning_rate=np.float32(0.5), keep_best=np.True_)
    assert (train.batch_size, train.learning_rate, train.keep_best) == (64, 0.5, True)
    assert [type(v) for v in (train.batch_size, train.learning_rate, train.keep_best)] == [
        int,
        float,
        bool,
    ]
    assert ModelConfig(hidden=np.array([32, 16])).hidden == (32, 16)
    assert "batch_size = 64" in RunConfig(train=train).to_toml()  # TOML takes them
    with pytest.raises(ConfigError, match=r"^train.epochs = 2.5 is not valid: expected an int"):
        TrainConfig(epochs=np.float64(2.5))
    with pytest.raises(ConfigError, match="model.hidden"):
        ModelConfig(hidden=np.array([[32]]))
