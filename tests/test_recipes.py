"""Every bundled recipe: says where its numbers come from, and trains for one epoch on a
small generated slice shaped like its dataset (the CI smoke test of the recipes)."""

from pathlib import Path

import numpy as np
import pytest

import mlplab
from mlplab.recipes import load_recipe, recipe_names, recipe_text

SHAPES = {"mnist": (28, 28, 1), "fashion-mnist": (28, 28, 1), "cifar10": (32, 32, 3)}
TUTORIALS = [n for n in recipe_names() if n.startswith("tutorial-")]


def test_the_issue_s_recipes_are_all_there():
    assert {
        "tutorial-sigmoid-mnist",
        "tutorial-relu-cifar10",
        "tutorial-tanh-mnist",
        "tutorial-l2-mnist",
        "tutorial-adam-mnist",
        "tutorial-adam-mnist-dropout",
        "best-mnist",
        "best-fashion-mnist",
        "best-cifar10",
        "fast-fashion-mnist",
    } <= set(recipe_names())


@pytest.mark.parametrize("name", recipe_names())
def test_recipe_says_where_its_numbers_come_from(name):
    text = recipe_text(name).lower()
    assert any(word in text for word in ("reported", "literature", "measured")), name
    assert load_recipe(name).description


def test_tutorial_settings_are_the_tutorials():
    sigmoid = load_recipe("tutorial-sigmoid-mnist")
    assert sigmoid.model.hidden == (256, 128) and sigmoid.model.activation == "sigmoid"
    assert (sigmoid.train.optimizer, sigmoid.train.learning_rate) == ("sgd", 0.01)
    assert (sigmoid.train.batch_size, sigmoid.train.epochs) == (128, 100)
    assert sigmoid.data.validation == "test" and sigmoid.data.scaling == "unit"
    tanh = load_recipe("tutorial-tanh-mnist")
    assert (tanh.train.momentum, tanh.train.decay, tanh.train.batch_size) == (0.9, 1e-7, 64)
    assert tanh.data.scaling == "standardize" and tanh.model.hidden == (50, 50)
    l2 = load_recipe("tutorial-l2-mnist")
    assert (l2.model.l2, l2.model.hidden, l2.data.validation) == (0.01, (20, 15), 0.2)
    adam = load_recipe("tutorial-adam-mnist")
    assert (adam.data.scaling, adam.train.epochs, adam.train.batch_size) == ("centered", 5, 32)
    assert load_recipe("tutorial-adam-mnist-dropout").model.dropout == 0.5
    cifar = load_recipe("tutorial-relu-cifar10")
    assert cifar.model.hidden == (1024, 512) and cifar.train.batch_size == 32
    assert not any(load_recipe(n).augment.active for n in TUTORIALS)
    assert not load_recipe("best-mnist").augment.flip  # never mirror digits


def slice_like(dataset: str, tmp_path: Path) -> str:
    """A 300-image .npz shaped like ``dataset`` (digits stays the real digits)."""
    if dataset not in SHAPES:
        return dataset
    rng = np.random.default_rng(0)
    shape = SHAPES[dataset]
    path = tmp_path / f"{dataset}-slice.npz"
    np.savez(
        path,
        x_train=rng.integers(0, 256, (300, *shape), dtype=np.uint8),
        y_train=np.arange(300) % 10,
        x_test=rng.integers(0, 256, (100, *shape), dtype=np.uint8),
        y_test=np.arange(100) % 10,
    )
    return str(path)


@pytest.mark.parametrize("name", recipe_names())
def test_recipe_trains_one_epoch_on_a_small_slice(name, tmp_path):
    recipe = load_recipe(name)
    run = mlplab.train(
        name,
        overrides={
            "data.dataset": slice_like(recipe.data.dataset, tmp_path),
            "train.epochs": 1,
        },
        out=tmp_path / "runs",
        verbose=False,
        report=False,
    )
    assert run.status == "complete" and len(run.history) == 1
    assert 0.0 <= run.metrics["test_accuracy"] <= 1.0
    assert run.config.augment == recipe.augment and run.config.model == recipe.model
