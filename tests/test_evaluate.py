"""task=evaluate: metrics against hand-computed cases and scikit-learn, end to end runs (a
trained run's weights, kinds, reconstruction thresholds, reference runs, CSVs, PNGs), and the
errors a user can cause (exit 2 with the config path)."""

from __future__ import annotations

import copy
import csv
import json
from pathlib import Path

import numpy as np
import pytest
from matplotlib.image import imread
from sklearn import metrics as sk

from runner.config.schema import DatasetSpec
from runner.data import datasets
from runner.evaluate import metrics as m
from runner.run import run

BLOBS = {"dataset": {"name": "blobs", "rows": 120, "features": 4, "classes": 3, "seed": 1}}
LABELS = {"dataset": {**BLOBS["dataset"], "part": "labels"}}


def classifier(task: str = "fit", **evaluate) -> dict:
    return copy.deepcopy(_classifier(task, evaluate))


def _classifier(task: str, evaluate: dict) -> dict:
    return {
        "task": task,
        "seed": 3,
        "progress": False,
        "fit": {
            "epochs": 4,
            "batch_size": 16,
            "validation_split": 0.25,
            "loss": "sparse_categorical_crossentropy",
            "metrics": ["loss", "accuracy"],
            "optimizer": {"name": "adam", "lr": 0.01},
        },
        "evaluate": evaluate,
        "model": {
            "inputs": {"x": {"data": BLOBS}},
            "layers": {
                "h": {"type": "Dense", "output_dim": 8, "activation": "tanh"},
                "drop": {"type": "Dropout", "p": 0.3},
                "out": {"type": "Dense", "output_dim": 3, "activation": "softmax"},
            },
            "targets": {"out": LABELS},
        },
    }


def autoencoder(rows: int = 40, seed: int = 5, **evaluate) -> dict:
    return {
        "task": "evaluate",
        "seed": 0,
        "progress": False,
        "evaluate": evaluate,
        "model": {
            "inputs": {
                "x": {
                    "shape": [6],
                    "data": {"random": {"distribution": "uniform", "rows": rows, "seed": seed}},
                }
            },
            "layers": {
                "ae": {
                    "type": "AutoEncoder",
                    "encoder": {"enc": {"type": "Dense", "output_dim": 3, "activation": "tanh"}},
                    "decoder": {"dec": {"type": "Dense", "output_dim": 6}},
                }
            },
        },
    }


def go(tmp_path: Path, config: dict, name: str):
    folder = tmp_path / name
    outcome = run(copy.deepcopy(config), folder, tmp_path)
    return outcome, json.loads((folder / "result.json").read_text()), folder


def read_csv(path: Path) -> list[list[str]]:
    with path.open(newline="") as f:
        return list(csv.reader(f))


def valid_png(path: Path) -> np.ndarray:
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    image = imread(path)  # decodes the whole image: a truncated file fails here
    assert image.ndim == 3 and image.shape[0] > 200 and image.shape[1] > 200
    assert image.std() > 0.05  # not a blank canvas
    return image


# ---- metrics by hand ---------------------------------------------------------------------------
def test_classifier_metrics_by_hand():
    true = np.array([0, 0, 1, 2, 2, 2])
    pred = np.array([0, 1, 1, 2, 0, 2])
    counts = m.confusion_matrix(true, pred, 3)
    np.testing.assert_array_equal(counts, [[1, 1, 0], [0, 1, 0], [1, 0, 2]])
    table = m.per_class(counts)
    np.testing.assert_allclose(table["precision"], [1 / 2, 1 / 2, 2 / 2])
    np.testing.assert_allclose(table["recall"], [1 / 2, 1 / 1, 2 / 3])
    np.testing.assert_allclose(table["f1"], [1 / 2, 2 / 3, 4 / 5])  # 2tp / (2tp + fp + fn)
    np.testing.assert_array_equal(table["support"], [2, 1, 3])
    scores = m.classifier_scores(counts)
    assert scores["accuracy"] == pytest.approx(4 / 6)
    assert scores["f1_macro"] == pytest.approx((1 / 2 + 2 / 3 + 4 / 5) / 3)
    assert scores["f1_weighted"] == pytest.approx((2 * 1 / 2 + 1 * 2 / 3 + 3 * 4 / 5) / 6)
    # a class never predicted and never present: 0, not NaN
    assert m.per_class(m.confusion_matrix(true, pred, 4))["precision"][3] == 0.0


def test_class_pairs_for_labels_onehot_one_unit_and_masks():
    y = np.array([[0.1, 0.7, 0.2], [0.6, 0.3, 0.1]], dtype=np.float32)
    assert [a.tolist() for a in m.class_pairs("sparse_categorical_crossentropy", y, [2, 0])] == [
        [2, 0],
        [1, 0],
    ]
    onehot = np.array([[0, 1, 0], [0, 0, 1]], dtype=np.float32)
    assert m.class_pairs("categorical_crossentropy", y, onehot)[0].tolist() == [1, 2]
    unit = np.array([[0.5], [0.51], [0.2]], dtype=np.float32)  # 0.5 is class 0, as legacy round
    assert m.class_pairs("binary_crossentropy", unit, [[1], [1], [0]])[1].tolist() == [0, 1, 0]
    seq = np.array([[[0.9, 0.1], [0.2, 0.8]]], dtype=np.float32)  # (1 sample, 2 steps, 2)
    true, pred = m.class_pairs("sparse_categorical_crossentropy", seq, [[1, 1]], [[True, False]])
    assert (true.tolist(), pred.tolist()) == ([1], [0])  # the masked step is left out


def test_regression_metrics_by_hand():
    y = np.array([[1.0], [2.0], [3.0]], dtype=np.float32)
    t = np.array([[1.0], [2.0], [4.0]], dtype=np.float32)
    scores = m.regression_scores(y, t)
    assert scores["mse"] == pytest.approx(1 / 3)
    assert scores["mae"] == pytest.approx(1 / 3)
    # SS_tot of t = (1-7/3)^2 + (2-7/3)^2 + (4-7/3)^2 = 42/9; SS_res = 1
    assert scores["r2"] == pytest.approx(1 - 9 / 42)
    constant = np.ones((3, 1))
    assert m.regression_scores(constant, constant)["r2"] == 1.0  # exact constant column
    assert m.regression_scores(constant * 2, constant)["r2"] == 0.0


def test_roc_auc_and_row_errors_by_hand():
    # the textbook case: of the 4 (positive, negative) pairs, 3 are ordered right
    assert m.roc_auc([0.1, 0.4, 0.35, 0.8], [0, 0, 1, 1]) == pytest.approx(0.75)
    assert m.roc_auc([1.0, 1.0, 2.0], [0, 1, 1]) == pytest.approx(0.75)  # a tie counts half
    assert m.roc_auc([3.0, 2.0, 1.0], [1, 0, 0]) == 1.0
    with pytest.raises(ValueError, match="positive and negative"):
        m.roc_auc([1.0, 2.0], [1, 1])
    y = np.array([[1.0, 2.0], [0.0, 0.0]], dtype=np.float32)
    t = np.array([[0.0, 0.0], [0.0, 3.0]], dtype=np.float32)
    np.testing.assert_allclose(m.row_errors("mse", y, t), [(1 + 4) / 2, 9 / 2])
    np.testing.assert_allclose(m.row_errors("mae", y, t), [3 / 2, 3 / 2])
    seq = np.zeros((1, 2, 1), dtype=np.float32)
    np.testing.assert_allclose(
        m.row_errors("mse", seq, np.array([[[2.0], [4.0]]]), np.array([[True, False]])), [4.0]
    )


# ---- metrics against scikit-learn --------------------------------------------------------------
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_classifier_metrics_match_sklearn(seed):
    rng = np.random.default_rng(seed)
    classes = 5
    true = rng.integers(0, classes, 300)
    pred = np.where(rng.random(300) < 0.6, true, rng.integers(0, classes - 1, 300))  # 4 never
    labels = list(range(classes))
    counts = m.confusion_matrix(true, pred, classes)
    np.testing.assert_array_equal(counts, sk.confusion_matrix(true, pred, labels=labels))
    ours = m.per_class(counts)
    p, r, f, s = sk.precision_recall_fscore_support(true, pred, labels=labels, zero_division=0)
    np.testing.assert_allclose(ours["precision"], p)
    np.testing.assert_allclose(ours["recall"], r)
    np.testing.assert_allclose(ours["f1"], f)
    np.testing.assert_array_equal(ours["support"], s)
    scores = m.classifier_scores(counts)
    assert scores["accuracy"] == pytest.approx(sk.accuracy_score(true, pred))
    assert scores["f1_macro"] == pytest.approx(
        sk.f1_score(true, pred, labels=labels, average="macro", zero_division=0)
    )
    assert scores["f1_weighted"] == pytest.approx(
        sk.f1_score(true, pred, labels=labels, average="weighted", zero_division=0)
    )


@pytest.mark.parametrize("seed", [0, 1])
def test_regression_and_auroc_match_sklearn(seed):
    rng = np.random.default_rng(seed)
    t = rng.normal(size=(200, 3)).astype(np.float32)
    y = (t + rng.normal(scale=0.5, size=t.shape)).astype(np.float32)
    t[:, 2] = 1.0  # a constant column: sklearn's force_finite rule
    scores = m.regression_scores(y, t)
    assert scores["mse"] == pytest.approx(sk.mean_squared_error(t, y), rel=1e-6)
    assert scores["mae"] == pytest.approx(sk.mean_absolute_error(t, y), rel=1e-6)
    assert scores["r2"] == pytest.approx(sk.r2_score(t, y), rel=1e-6)
    errors = np.round(rng.gamma(2.0, size=500), 1)  # rounded: many ties
    positive = rng.random(500) < 0.2 + 0.1 * (errors > 2)
    assert m.roc_auc(errors, positive) == pytest.approx(sk.roc_auc_score(positive, errors))


# ---- end to end -------------------------------------------------------------------------------
def test_evaluate_a_trained_run_reproduces_its_validation_scores(tmp_path):
    """evaluate.run=RUN on split validation scores the rows fit held out with the weights it
    kept: loss and accuracy equal the fit's last val_loss and val_accuracy; the per-class
    table and confusion matrix equal scikit-learn's on the saved predictions."""
    fit_outcome, fitted, fit_folder = go(tmp_path, classifier(), "fit")
    assert fit_outcome.exit_code == 0, fitted.get("error")
    config = classifier("evaluate", run=str(fit_folder), split="validation")
    outcome, result, folder = go(tmp_path, config, "eval")
    assert outcome.exit_code == 0, result.get("error")
    got = result["metrics"]
    assert got["loss"] == pytest.approx(fitted["metrics"]["val_loss"], rel=1e-6)
    assert got["accuracy"] == pytest.approx(fitted["metrics"]["val_accuracy"])
    labels = datasets.load(DatasetSpec(**LABELS["dataset"]), "t")[90:]
    with np.load(folder / "outputs.npz", allow_pickle=False) as npz:
        probabilities = npz["out"]
    assert probabilities.shape == (30, 3)
    predicted = probabilities.argmax(axis=1)
    p, r, f, s = sk.precision_recall_fscore_support(labels, predicted, labels=[0, 1, 2])
    classes = result["evaluate"]["outputs"]["out"]["classes"]
    np.testing.assert_allclose([c["precision"] for c in classes], p)
    np.testing.assert_allclose([c["recall"] for c in classes], r)
    np.testing.assert_allclose([c["f1"] for c in classes], f)
    assert [c["support"] for c in classes] == s.tolist()
    expected = sk.confusion_matrix(labels, predicted, labels=[0, 1, 2])
    rows = read_csv(folder / "confusion_matrix.csv")
    assert rows[0] == ["true\\pred", "0", "1", "2"]
    np.testing.assert_array_equal([[int(v) for v in r[1:]] for r in rows[1:]], expected)
    assert result["evaluate"]["outputs"]["out"]["confusion_matrix"] == expected.tolist()
    assert result["evaluate"]["first_row"] == 90 and result["evaluate"]["rows"] == 30
    valid_png(folder / "confusion_matrix.png")
    # the same weights named the other way: identical numbers
    same = classifier("evaluate", split="validation")
    same["model"]["weights"] = {"path": str(fit_folder / "weights.npz")}
    _, again, _ = go(tmp_path, same, "again")
    assert again["metrics"] == got


def test_kind_comes_from_the_targets_and_can_be_overridden(tmp_path):
    onehot = classifier("evaluate")
    del onehot["fit"]
    onehot["model"]["targets"]["out"] = {"dataset": {**BLOBS["dataset"], "part": "onehot"}}
    _, result, _ = go(tmp_path, onehot, "onehot")
    assert result["evaluate"]["outputs"]["out"]["kind"] == "classifier"
    assert result["evaluate"]["outputs"]["out"]["loss"] == "categorical_crossentropy"
    labels = classifier("evaluate")
    del labels["fit"]
    _, result, _ = go(tmp_path, labels, "labels")
    assert result["evaluate"]["outputs"]["out"]["loss"] == "sparse_categorical_crossentropy"
    onehot["evaluate"] = {"kind": "regression"}
    _, result, folder = go(tmp_path, onehot, "forced")
    assert result["evaluate"]["outputs"]["out"] == {"kind": "regression", "loss": "mse"}
    with np.load(folder / "outputs.npz", allow_pickle=False) as npz:
        y = npz["out"]
    t = datasets.load(DatasetSpec(**{**BLOBS["dataset"], "part": "onehot"}), "t")
    assert result["metrics"]["mse"] == pytest.approx(sk.mean_squared_error(t, y), rel=1e-6)
    assert result["metrics"]["r2"] == pytest.approx(sk.r2_score(t, y), rel=1e-5)
    _, result, _ = go(tmp_path, autoencoder(), "ae")
    assert result["evaluate"]["outputs"]["ae"]["kind"] == "reconstruction"


def test_regression_by_hand_with_inline_weights(tmp_path):
    """y = 2x + 1 against targets [3, 5, 8]: residuals 0, 0, 1."""
    config = {
        "task": "evaluate",
        "model": {
            "inputs": {"x": {"data": [[1.0], [2.0], [3.0]]}},
            "layers": {"d": {"type": "Dense", "output_dim": 1, "weights": {"W": [[2]], "b": [1]}}},
            "targets": {"d": [[3.0], [5.0], [8.0]]},
        },
    }
    outcome, result, _ = go(tmp_path, config, "reg")
    assert outcome.exit_code == 0, result.get("error")
    got = result["metrics"]
    assert got["mse"] == pytest.approx(1 / 3) and got["loss"] == pytest.approx(1 / 3)
    assert got["mae"] == pytest.approx(1 / 3)
    # SS_tot about the mean 16/3: (7/3)^2 + (1/3)^2 + (8/3)^2 = 114/9
    assert got["r2"] == pytest.approx(1 - 1 / (114 / 9))


def test_reconstruction_errors_threshold_top_k_and_auroc(tmp_path):
    labels = np.zeros(40, dtype=np.int64)
    labels[[3, 7, 11, 30]] = 1
    np.save(tmp_path / "labels.npy", labels)
    config = autoencoder(threshold=0.2, top_k=3, anomaly_labels={"path": "labels.npy"})
    outcome, result, folder = go(tmp_path, config, "ae")
    assert outcome.exit_code == 0, result.get("error")
    errors = np.load(folder / "reconstruction_error.npy", allow_pickle=False)
    assert errors.dtype == np.float32 and errors.shape == (40,)
    assert result["metrics"]["loss"] == pytest.approx(float(errors.mean(dtype=np.float64)))
    assert result["metrics"]["error_q90"] == pytest.approx(np.quantile(errors, 0.9))
    assert result["metrics"]["anomalies"] == int((errors > 0.2).sum())
    top = np.argsort(-errors, kind="stable")[:3]
    assert [t["row"] for t in result["evaluate"]["outputs"]["ae"]["top_k"]] == top.tolist()
    assert result["metrics"]["anomaly_auroc"] == pytest.approx(sk.roc_auc_score(labels, errors))
    listed = read_csv(folder / "anomalies.csv")
    assert listed[0] == ["row", "error"]
    flagged = [int(r[0]) for r in listed[1:]]
    assert 0 < len(flagged) < 40  # the threshold splits the rows
    assert sorted(flagged) == np.flatnonzero(errors > 0.2).tolist()
    assert [np.float32(r[1]) for r in listed[1:]] == sorted(errors[errors > 0.2], reverse=True)
    valid_png(folder / "reconstruction_error.png")


def test_reconstruction_error_is_the_row_mse_against_the_input(tmp_path):
    np.save(tmp_path / "x.npy", np.random.default_rng(0).uniform(size=(25, 6)).astype(np.float32))
    config = autoencoder()
    config["model"]["inputs"]["x"]["data"] = {"path": "x.npy"}
    _, result, folder = go(tmp_path, config, "ae")
    x = np.load(tmp_path / "x.npy")
    with np.load(folder / "outputs.npz", allow_pickle=False) as npz:
        y = npz["ae"]
    expected = ((y.astype(np.float64) - x) ** 2).mean(axis=1)
    errors = np.load(folder / "reconstruction_error.npy", allow_pickle=False)
    np.testing.assert_allclose(errors, expected, rtol=1e-5)
    assert result["metrics"]["error_std"] == pytest.approx(expected.std(), rel=1e-5)


def test_threshold_from_a_quantile_of_a_reference_run(tmp_path):
    _, ref_result, ref = go(tmp_path, autoencoder(rows=50, seed=1), "reference")
    reference_errors = np.load(ref / "reconstruction_error.npy", allow_pickle=False)
    config = autoencoder(rows=30, seed=2, threshold_quantile=0.9, reference=str(ref))
    outcome, result, folder = go(tmp_path, config, "scored")
    assert outcome.exit_code == 0, result.get("error")
    threshold = np.quantile(reference_errors.astype(np.float64), 0.9)
    assert result["metrics"]["threshold"] == pytest.approx(threshold)
    errors = np.load(folder / "reconstruction_error.npy", allow_pickle=False)
    assert result["metrics"]["anomalies"] == int((errors > threshold).sum())
    assert result["evaluate"]["outputs"]["ae"]["threshold_from"].startswith("quantile 0.9 of ")
    # without a reference, the quantile of the rows' own errors
    _, own, _ = go(tmp_path, autoencoder(rows=30, seed=2, threshold_quantile=0.9), "own")
    assert own["metrics"]["threshold"] == pytest.approx(np.quantile(errors, 0.9))
    assert own["metrics"]["anomalies"] == 3  # 10% of 30 rows lie above the 0.9 quantile


def test_save_csv_has_the_row_index_for_predict_and_evaluate(tmp_path):
    fit_outcome, _, fit_folder = go(tmp_path, classifier(), "fit")
    config = classifier("evaluate", run=str(fit_folder), split="validation")
    config["save_csv"] = True
    _, result, folder = go(tmp_path, config, "eval")
    rows = read_csv(folder / "outputs" / "out.csv")
    assert rows[0] == ["row", "out[0]", "out[1]", "out[2]"]
    assert [int(r[0]) for r in rows[1:]] == list(range(90, 120))
    with np.load(folder / "outputs.npz", allow_pickle=False) as npz:
        values = npz["out"]
    np.testing.assert_array_equal(np.array([r[1:] for r in rows[1:]], dtype=np.float32), values)
    assert result["outputs"]["out"]["csv"] == "outputs/out.csv"
    predict = classifier("predict")
    predict["save_csv"] = True
    _, result, folder = go(tmp_path, predict, "predict")
    rows = read_csv(folder / "outputs" / "out.csv")
    assert [int(r[0]) for r in rows[1:]] == list(range(120))


def test_datasets_take_windows_and_classes():
    spec = {"name": "digits", "part": "labels", "shuffle": True}
    every = datasets.load(DatasetSpec(**spec), "t")
    window = datasets.load(DatasetSpec(**spec, start=1400, rows=100), "t")
    np.testing.assert_array_equal(window, every[1400:1500])
    kept = datasets.load(DatasetSpec(**spec, rows=300, keep_classes=[1, 7]), "t")
    np.testing.assert_array_equal(kept, every[:300][np.isin(every[:300], [1, 7])])
    dropped = datasets.load(DatasetSpec(**spec, start=1000, drop_classes=[9]), "t")
    np.testing.assert_array_equal(dropped, every[1000:][every[1000:] != 9])
    blobs = {"name": "blobs", "part": "labels", "rows": 50, "seed": 4}
    longer = datasets.load(DatasetSpec(**{**blobs, "rows": 70}), "t")
    np.testing.assert_array_equal(datasets.load(DatasetSpec(**blobs, start=20), "t"), longer[20:])


def test_digits_anomaly_example_composes_disjoint_windows():
    from hydra import compose as hydra_compose
    from omegaconf import OmegaConf

    from runner.api import compose
    from runner.config.conf_dir import initialize

    with initialize():
        cfg = hydra_compose("config", overrides=["+experiment=digits_anomaly"])
    config = OmegaConf.to_container(cfg, resolve=True)
    assert config["task"] == "evaluate"
    scored = config["model"]["inputs"]["x"]["data"]["dataset"]
    assert (scored["start"], scored["rows"], scored["drop_classes"]) == (1400, None, None)
    assert config["evaluate"]["anomaly_classes"] == [9]
    trained = compose("autoencoder_digits_anomaly")["model"]["inputs"]["x"]["data"]["dataset"]
    assert (trained["rows"], trained["drop_classes"]) == (1400, [9])


# ---- errors a user can cause ------------------------------------------------------------------
def _problems(result: dict) -> list[tuple[str, str]]:
    return [(p["path"], p["message"]) for p in result["error"]["problems"]]


def _refused(tmp_path: Path, config: dict, name: str = "bad") -> list[tuple[str, str]]:
    outcome, result, _ = go(tmp_path, config, name)
    assert outcome.exit_code == 2, result
    assert result["status"] == "error"
    return _problems(result)


def _without_targets():
    config = classifier("evaluate")
    del config["model"]["targets"]
    return config


def _wrong_target_shape():
    config = classifier("evaluate")
    config["model"]["targets"]["out"] = {"dataset": {**BLOBS["dataset"], "part": "x"}}
    return config


def _set(path: str, value):
    def make():
        config = classifier("evaluate")
        *parents, key = path.split(".")
        node = config
        for p in parents:
            node = node.setdefault(p, {})
        node[key] = value
        return config

    return make


@pytest.mark.parametrize(
    "make, path, fragment",
    [
        (_without_targets, "model.targets", "no target for output 'out'"),
        (_wrong_target_shape, "model.targets.out", "per-sample shape"),
        (_set("evaluate.run", "no_such_run"), "evaluate.run", "not a folder"),
        (_set("fit.validation_split", None), None, None),  # placeholder replaced below
        (_set("evaluate.class_names", ["a", "b"]), "evaluate.class_names", "3 classes, found 2"),
        (_set("evaluate.threshold", 0.5), "evaluate.threshold", "reconstruction outputs"),
        (_set("evaluate.kind", {"outt": "regression"}), "evaluate.kind.outt", "did you mean 'out'"),
        (_set("evaluate.reference", "."), "evaluate", "also give threshold_quantile"),
        (
            _set("model.inputs.x.data.dataset.keep_classes", [7]),
            "model.inputs.x.data.dataset.keep_classes",
            "blobs has classes 0..2, found [7]",
        ),
    ],
)
def test_config_errors_name_their_path(tmp_path, make, path, fragment):
    config = make()
    if path is None:  # split validation without validation rows
        config["fit"]["validation_split"] = None
        config["evaluate"]["split"] = "validation"
        path, fragment = "evaluate.split", "hold out no validation rows"
    problems = _refused(tmp_path, config)
    assert any(p == path and fragment in msg for p, msg in problems), problems


def test_run_folders_that_are_not_finished_runs_with_weights(tmp_path):
    empty = tmp_path / "empty"
    empty.mkdir()
    assert _refused(tmp_path, classifier("evaluate", run="empty"), "a") == [
        (
            "evaluate.run",
            "not a finished run folder: it holds no result.json (a run writes it last)",
        )
    ]
    failed = tmp_path / "failed"
    failed.mkdir()
    (failed / "result.json").write_text('{"status": "error", "task": "fit"}')
    problems = _refused(tmp_path, classifier("evaluate", run="failed"), "b")
    assert problems == [
        ("evaluate.run", "the run did not finish ok (status 'error'): choose another")
    ]
    deep = tmp_path / "deep"  # nested past the JSON parser's depth: a named problem too
    deep.mkdir()
    (deep / "result.json").write_text("[" * 100_000)
    problems = _refused(tmp_path, classifier("evaluate", run="deep"), "d")
    assert problems == [
        (
            "evaluate.run",
            "its result.json is unreadable: maximum recursion depth exceeded while decoding a "
            "JSON array from a unicode string",
        )
    ]
    outcome, _, validated = go(tmp_path, classifier("validate"), "validated")
    assert outcome.exit_code == 0
    problems = _refused(tmp_path, classifier("evaluate", run=str(validated)), "c")
    assert problems == [("evaluate.run", "the run (task=validate) holds no weights.npz")]


def test_weights_of_another_model_are_a_shape_error_naming_the_file(tmp_path):
    other = classifier()
    other["model"]["layers"]["h"]["output_dim"] = 5
    _, _, fit_folder = go(tmp_path, other, "fit")
    problems = _refused(tmp_path, classifier("evaluate", run=str(fit_folder)))
    assert (
        "model.weights[h/W]",
        "expected shape (4, 8) (from the input size and the layer's settings), found (4, 5)",
    ) in problems


def test_run_and_model_weights_together_are_refused(tmp_path):
    _, _, fit_folder = go(tmp_path, classifier(), "fit")
    config = classifier("evaluate", run=str(fit_folder))
    config["model"]["weights"] = {"path": str(fit_folder / "weights.npz")}
    problems = _refused(tmp_path, config)
    assert problems[0][0] == "evaluate.run" and "give one of the two" in problems[0][1]


def test_run_and_reference_folders_are_confined(tmp_path):
    work = tmp_path / "work"
    work.mkdir()
    _, _, fit_folder = go(tmp_path, classifier(), "fit")  # outside work/
    config = autoencoder(threshold_quantile=0.5, reference=str(fit_folder))
    config["evaluate"]["run"] = str(fit_folder)
    outcome = run(copy.deepcopy(config), work / "run", work)
    result = json.loads((work / "run" / "result.json").read_text())
    assert outcome.exit_code == 2
    assert {p for p, _ in _problems(result)} == {"evaluate.run", "evaluate.reference"}
    assert all("outside the directories" in msg for _, msg in _problems(result))
    # a symlink inside an allowed run folder does not lead out of it
    inside = work / "fake_run"
    inside.mkdir()
    (inside / "result.json").write_text('{"status": "ok", "task": "fit"}')
    (inside / "weights.npz").symlink_to(fit_folder / "weights.npz")
    outcome = run(classifier("evaluate", run="fake_run"), work / "run2", work)
    result = json.loads((work / "run2" / "result.json").read_text())
    assert _problems(result) == [
        (
            "evaluate.run",
            "the run (task=fit) holds no weights.npz inside its folder (a symlink leads out of it)",
        )
    ]
    # nor does its result.json, whose status and task a message would show
    (tmp_path / "private.json").write_text('{"status": "s3cr3t-value", "task": "fit"}')
    (inside / "result.json").unlink()
    (inside / "result.json").symlink_to(tmp_path / "private.json")
    outcome = run(classifier("evaluate", run="fake_run"), work / "run3", work)
    result = json.loads((work / "run3" / "result.json").read_text())
    assert _problems(result) == [
        ("evaluate.run", "not a finished run folder: its result.json leads out of it (a symlink)")
    ]


def test_anomaly_labels_errors(tmp_path):
    np.save(tmp_path / "short.npy", np.zeros(10))
    np.save(tmp_path / "three.npy", np.arange(40) % 3)
    np.save(tmp_path / "normal.npy", np.zeros(40))
    for name, fragment in [
        ("short", "one label per row of the scored data (40 rows, before evaluate.split)"),
        ("three", "labels are 0 (normal) or 1 (anomaly) unless"),
        ("normal", "the 40 scored rows are all normal: the AUROC needs both"),
    ]:
        config = autoencoder(anomaly_labels={"path": f"{name}.npy"})
        problems = _refused(tmp_path, config, name)
        assert problems[0][0] == "evaluate.anomaly_labels" and fragment in problems[0][1]
    config = autoencoder(anomaly_labels={"path": "three.npy"}, normal_classes=[0, 1])
    _, result, _ = go(tmp_path, config, "classes")
    assert result["metrics"]["labelled_anomalies"] == 13  # rows 2, 5, ..., 38


def test_a_reference_run_without_reconstruction_errors(tmp_path):
    _, _, fit_folder = go(tmp_path, classifier(), "fit")
    problems = _refused(tmp_path, autoencoder(threshold_quantile=0.9, reference=str(fit_folder)))
    assert problems == [
        ("evaluate.reference", "the run (task=fit) holds no reconstruction_error.npy")
    ]


def test_validate_checks_the_evaluate_settings(tmp_path):
    config = classifier("validate", class_names=["a"])
    problems = _refused(tmp_path, config)
    assert problems == [("evaluate.class_names", "output 'out' has 3 classes, found 1 names")]


@pytest.mark.slow
def test_cli_error_exits_2_with_the_config_path(cli):
    res = cli("+model=mlp_digits", "task=evaluate", "evaluate.run=no/such/run")
    assert res.returncode == 2
    assert "invalid config: 1 problem\n  evaluate.run (no/such/run): not a folder" in res.stdout
    assert "Traceback" not in res.stdout + res.stderr


@pytest.mark.slow
def test_cli_fit_then_evaluate_prints_the_table(cli):
    fitted = cli("+model=mlp_digits", "task=fit", "fit.epochs=2", "fit.patience=null")
    assert fitted.returncode == 0, fitted.stderr
    run_dir = fitted.folder.relative_to(fitted.folder.parents[2])
    res = cli(
        "+model=mlp_digits", "task=evaluate", f"evaluate.run={run_dir}", "evaluate.split=validation"
    )
    assert res.returncode == 0, res.stdout + res.stderr
    assert "evaluate: 360 rows (split validation, rows 1437..1796)" in res.stdout
    assert "confusion matrix (rows: true class, columns: predicted class)" in res.stdout
    metrics = res.result["metrics"]
    assert metrics["accuracy"] == pytest.approx(fitted.result["metrics"]["objective"])
    assert f"  accuracy         {metrics['accuracy']:.4f}" in res.stdout
    counts = np.array(res.result["evaluate"]["outputs"]["out"]["confusion_matrix"])
    assert counts.sum() == 360 and np.trace(counts) / 360 == pytest.approx(metrics["accuracy"])


@pytest.mark.slow
def test_a_sweep_ranks_evaluate_runs_by_their_metric(cli, tmp_path):
    """Evaluate jobs declare hydra.callbacks.sweep.metric=accuracy: the summary reads it from
    each job's result.json and marks the job with the highest."""
    model = tmp_path / "my_conf" / "model"
    model.mkdir(parents=True)
    (model / "blobs_clf.yaml").write_text(json.dumps(classifier()["model"]))
    res = cli(
        "-m",
        "--config-dir",
        "my_conf",
        "+model=blobs_clf",
        "task=evaluate",
        "seed=0,1,2",
        "hydra.callbacks.sweep.metric=accuracy",
        "progress=false",
    )
    assert res.returncode == 0, res.stdout + res.stderr
    sweep = next((tmp_path / "outputs" / "multirun").glob("*/*"))
    accuracy = {
        job: json.loads((sweep / str(job) / "result.json").read_text())["metrics"]["accuracy"]
        for job in range(3)
    }
    with (sweep / "summary.csv").open(newline="") as f:
        rows = {r["job"]: r for r in csv.DictReader(f)}
    assert [float(rows[str(j)]["accuracy"]) for j in range(3)] == pytest.approx(
        [accuracy[j] for j in range(3)]
    )
    best = max(accuracy, key=accuracy.get)
    assert rows[str(best)]["best"] == "*"
    assert f"best: job {best} (accuracy = " in res.stdout
