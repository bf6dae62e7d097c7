"""mlplab.summary: a network's layers and parameter counts, as Keras counts them."""

from __future__ import annotations

import json
import shutil

import keras
import numpy as np

import mlplab
from mlplab.config import ModelConfig
from mlplab.data.scaling import ScalingParams
from mlplab.model import build_model, ensemble_model
from mlplab.report.compare import compare_runs
from mlplab.summary import describe, model_summary


def small_model(**settings) -> keras.Sequential:
    scaling = ScalingParams(offset=np.zeros(16, np.float32), scale=np.ones(16, np.float32))
    return build_model(ModelConfig(**settings), (4, 4, 1), 3, scaling)


def test_layers_and_counts_of_a_network():
    model = small_model(hidden=[8, 5], batch_norm=True, dropout=0.2)
    summary = model_summary(model)
    assert summary.parameters == model.count_params()
    # Weights and biases, and batch norm's scale and shift train; its moving mean and
    # variance (2 x 8 + 2 x 5 numbers) do not. A hidden layer before batch norm has no bias
    # (the norm's shift takes its place).
    dense = 16 * 8 + 8 * 5 + (5 * 3 + 3)
    assert summary.trainable == dense + 2 * 8 + 2 * 5
    assert summary.parameters == summary.trainable + 2 * 8 + 2 * 5
    assert summary.multiply_adds == 16 * 8 + 8 * 5 + 5 * 3
    kinds = [row.kind for row in summary.layers]
    assert kinds[:3] == ["Flatten", "Normalization", "Dense"] and kinds[-1] == "Dense"
    assert "BatchNormalization" in kinds and "Dropout" in kinds
    last = summary.layers[-1]
    assert (last.output, last.activation, last.parameters) == ("3", "softmax", 18)
    assert sum(row.parameters for row in summary.layers) == summary.parameters
    assert describe(summary) == (
        f"{summary.parameters:,} parameters ({summary.trainable:,} trainable), 1 KiB as "
        f"float32; {summary.multiply_adds:,} multiply-adds per image"
    )
    assert describe(model_summary(small_model(hidden=[]))).startswith(
        "51 parameters (all trainable), 0 KiB"
    )
    assert json.loads(json.dumps(summary.as_dict()))["layers"][2]["kind"] == "Dense"


def test_an_ensemble_is_a_row_per_member():
    networks = [small_model(hidden=[8]), small_model(hidden=[8])]
    summary = model_summary(ensemble_model(networks))
    assert [(row.name, row.kind) for row in summary.layers] == [
        ("member_1", "network 16-8-3"),
        ("member_2", "network 16-8-3"),
        ("mean", "Average"),
    ]
    one = model_summary(networks[0])
    assert summary.parameters == 2 * one.parameters
    assert summary.multiply_adds == 2 * one.multiply_adds


def test_a_run_records_its_size_and_its_report_lists_the_layers(digits_run):
    expected = model_summary(digits_run.model)
    assert digits_run.metrics["model"] == expected.totals()
    html = (digits_run.path / "report.html").read_text(encoding="utf-8")
    assert "<h2>Model</h2>" in html and describe(expected) in html
    assert '<td class="text">dense_1</td>' in html


def test_train_says_how_many_parameters(tmp_path, capsys):
    run = mlplab.train(overrides={"train.epochs": 1}, out=tmp_path, report=False)
    first = capsys.readouterr().err.splitlines()[0]
    assert f"; {run.metrics['model']['parameters']:,} parameters; engine: " in first


def test_compare_shows_the_sizes_when_they_differ(digits_run, tmp_path):
    small = mlplab.train(
        overrides={"train.epochs": 1, "model.hidden": [16]}, out=tmp_path, verbose=False
    )
    comparison = compare_runs([digits_run.path, small.path])
    at = comparison.header.index("parameters")
    assert comparison.header[at - 1] == "train.epochs"  # the last config difference
    sizes = [run.metrics["model"]["parameters"] for run in (digits_run, small)]
    assert [row[at] for row in comparison.rows] == [f"{size:,}" for size in sizes]
    assert "parameters" not in compare_runs([digits_run.path, digits_run.path]).header
    # A run from before metrics.json had its size: a dash.
    older = shutil.copytree(small.path, tmp_path / "older")
    metrics = json.loads((older / "metrics.json").read_text())
    del metrics["model"]
    (older / "metrics.json").write_text(json.dumps(metrics))
    third = compare_runs([digits_run.path, small.path, older])
    assert third.rows[2][third.header.index("parameters")] == "—"
