"mlre_lab.evals: metrics against scikit-learn, calibration, slices, galleries, the report, and `mlre eval`."
import json
import math

import numpy as np
import pytest
from scipy.special import softmax
from sklearn import metrics as skm

from mlre_lab.evals import (
    NEXT_STEPS,
    PLACEHOLDER,
    Report,
    calibration_bins,
    char_class,
    classification_metrics,
    eval_cli,
    expected_calibration_error,
    fit_temperature,
    lm_metrics,
    position_bucket,
    python_regions,
    slice_table,
    temperature_nll,
    top_mistakes,
)

RNG = np.random.default_rng(0)


def _predictions(items=400, classes=5, seed=0):
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, classes, items)
    logits = rng.normal(size=(items, classes)) + 2.0 * np.eye(classes)[labels] * (rng.random(items) < 0.7)[:, None]
    return softmax(logits, axis=1), labels, logits


@pytest.mark.parametrize("classes", [2, 5])
def test_classification_metrics_match_scikit_learn(classes):
    probs, labels, _ = _predictions(classes=classes)
    predicted = probs.argmax(axis=1)
    m = classification_metrics(probs, labels)
    assert math.isclose(m["accuracy"], skm.accuracy_score(labels, predicted))
    assert math.isclose(m["log_loss"], skm.log_loss(labels, probs), rel_tol=1e-9)
    assert np.array_equal(m["confusion"], skm.confusion_matrix(labels, predicted))
    precision, recall, f1, support = skm.precision_recall_fscore_support(labels, predicted, zero_division=0)
    for name, theirs in (("precision", precision), ("recall", recall), ("f1", f1), ("support", support)):
        assert np.allclose([c[name] for c in m["per_class"]], theirs), name
    if classes == 2:  # scikit-learn's binary Brier score is the mean squared error of p(class 1): half of ours
        assert math.isclose(m["brier"], 2 * skm.brier_score_loss(labels, probs[:, 1]))
    else:
        assert math.isclose(m["brier"], skm.brier_score_loss(labels, probs, labels=range(classes)))


def test_a_class_never_predicted_has_zero_precision_not_nan():
    probs = np.array([[0.9, 0.1, 0.0], [0.8, 0.2, 0.0], [0.3, 0.7, 0.0]])
    m = classification_metrics(probs, np.array([0, 2, 1]))
    assert m["per_class"][2] == {"class": 2, "precision": 0.0, "recall": 0.0, "f1": 0.0, "support": 1}


def test_lm_metrics():
    m = lm_metrics([math.log(4)] * 10)
    assert math.isclose(m["perplexity"], 4) and math.isclose(m["bits_per_token"], 2)


def test_ece_by_hand_and_both_binnings():
    confidence = np.array([0.95, 0.95, 0.95, 0.95, 0.55, 0.55])
    correct = np.array([1, 1, 1, 0, 1, 0])
    # two occupied equal-width bins: |0.75 - 0.95| * 4/6 + |0.5 - 0.55| * 2/6
    assert math.isclose(expected_calibration_error(confidence, correct, n_bins=10), 0.2 * 4 / 6 + 0.05 * 2 / 6)
    bins = calibration_bins(confidence, correct, n_bins=3, strategy="mass")
    assert bins["count"].sum() == 6
    perfect = RNG.random(20_000)
    hits = RNG.random(20_000) < perfect
    for strategy in ("width", "mass"):
        assert expected_calibration_error(perfect, hits, strategy=strategy) < 0.02  # calibrated by construction
    with pytest.raises(ValueError, match="'width' or 'mass'"):
        calibration_bins(confidence, correct, strategy="quantile")


def test_temperature_scaling_recovers_the_temperature_that_made_the_labels():
    logits = RNG.normal(scale=3.0, size=(5000, 4))
    true_temperature = 2.5
    labels = np.array([RNG.choice(4, p=p) for p in softmax(logits / true_temperature, axis=1)])
    fitted = fit_temperature(logits, labels)
    assert abs(fitted - true_temperature) < 0.2
    assert temperature_nll(logits, labels, fitted) <= temperature_nll(logits, labels, true_temperature) + 1e-9


def test_slice_table_flags_a_planted_bad_slice_and_nothing_in_noise():
    group = np.array(["a", "b", "c", "d"] * 250)
    correct = (RNG.random(1000) < np.where(group == "c", 0.6, 0.9)).astype(float)
    rows = slice_table(correct, {"group": group}, n_resamples=1000)
    assert [r.value for r in rows if r.flagged] == ["c"]
    c = next(r for r in rows if r.value == "c")
    assert c.metric.low < correct[group == "c"].mean() < c.metric.high and c.vs_rest.high < 0
    losses = RNG.normal(size=2000)  # no slice differs
    noise = slice_table(losses, {f"col{i}": RNG.integers(0, 5, 2000) for i in range(4)}, higher_is_better=False,
                        n_resamples=500)
    assert len(noise) == 20 and not any(r.flagged for r in noise)
    assert all(r.adjusted_p >= r.p_value for r in noise)


def test_top_mistakes_are_the_most_confident_first():
    probs, labels, _ = _predictions()
    fn = top_mistakes(probs, labels, target=2, kind="fn", k=100)
    assert all(labels[i] == 2 and probs[i].argmax() != 2 for i in fn)
    assert np.all(np.diff(probs[fn].max(axis=1)) <= 0)
    fp = top_mistakes(probs, labels, target=2, kind="fp", k=3)
    assert len(fp) == 3 and all(labels[i] != 2 and probs[i].argmax() == 2 for i in fp)


def test_python_regions_and_char_classes():
    text = 'def f(x):\n    """Doc # not a comment."""\n    return "#" + x  # real comment\n'
    regions = python_regions(text)
    at = lambda s: regions[text.index(s)]
    assert at('"""Doc') == "docstring" and at("# not") == "docstring"
    assert at("# real") == "comment" and at('"#"') == "code" and at("return") == "code"
    assert [char_class(c) for c in "a1 \n(é"] == ["letter", "digit", "space", "newline", "punctuation", "letter"]
    assert position_bucket(np.array([0, 1, 3, 4, 63]), 64).tolist() == ["0", "1-3", "1-3", "4-15", "16-63"]


def test_report_writes_markdown_and_html_ending_with_the_placeholder(tmp_path):
    from matplotlib.figure import Figure
    fig = Figure()
    fig.subplots().plot([1, 2])
    report = Report("T").heading("A").text("x < y").table(["a", "b"], [[1, "p|q"]]).figure(fig, "f1", "cap")
    path = report.write(tmp_path)
    md, page = path.read_text(), (tmp_path / "report.html").read_text()
    assert md.rstrip().endswith(f"## {NEXT_STEPS}\n\n{PLACEHOLDER}") and "| 1 | p\\|q |" in md
    assert "x &lt; y" in page and page.index(NEXT_STEPS) > page.index("figures/f1.png")
    assert (tmp_path / "figures" / "f1.png").stat().st_size > 1000
    with pytest.raises(ValueError, match="file name"):
        report.figure(fig, "../x", "bad")


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory):
    import torch

    from mlre_lab.train.config import load_config
    from mlre_lab.train.loop import train
    root = tmp_path_factory.mktemp("runs")
    config = load_config(None, ["train.max_steps=4", "train.eval_interval=4", "train.ckpt_interval=4",
                                "train.eval_iters=1", "train.sample_tokens=0", "train.device=cpu",
                                "train.batch_size=4", "model.n_layer=1", "model.d_model=32", "model.n_head=2",
                                "model.block_size=32", "data.max_chars=60000", f"data.cache_dir={root / 'cache'}"])
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        train(config, root / "tiny")
    finally:
        torch.set_num_threads(threads)
    return root


def test_mlre_eval_writes_a_report_into_the_run(tiny_run, capsys):
    assert eval_cli(["tiny", "--runs-dir", str(tiny_run), "--max-tokens", "1500", "--n-resamples", "200"]) == 0
    out = tiny_run / "tiny" / "eval-val"
    assert f"wrote {out / 'report.md'}" in capsys.readouterr().out
    md = (out / "report.md").read_text()
    for section in ("## Overall", "## Slices", "char_class=letter", "position=0", f"## {NEXT_STEPS}"):
        assert section in md
    assert {p.name for p in (out / "figures").iterdir()} == {"loss_by_position.png", "slice_char_class.png",
                                                             "slice_position.png", "slice_region.png",
                                                             "slice_source.png"}
    rows = json.loads((out / "slices.json").read_text())
    assert {"char_class", "position"} <= {r["column"] for r in rows}  # 1,500 characters may come from one file


@pytest.mark.parametrize("argv, message", [
    (["nope"], "no run 'nope'"),
    (["tiny", "--slices", "region,colour"], "unknown slice 'colour': choose from"),
    (["tiny", "--max-tokens", "0"], "--max-tokens must be at least 1"),
])
def test_mlre_eval_bad_input_gets_one_sentence_and_exit_2(tiny_run, capsys, argv, message):
    assert eval_cli([*argv, "--runs-dir", str(tiny_run)]) == 2
    err = capsys.readouterr().err
    assert message in err and err.count("\n") == 1


def test_mlre_eval_on_a_run_without_checkpoint(tiny_run, tmp_path, capsys):
    import shutil
    shutil.copytree(tiny_run / "tiny", tmp_path / "empty", ignore=shutil.ignore_patterns("checkpoints"))
    assert eval_cli([str(tmp_path / "empty")]) == 2
    assert "has no checkpoint to evaluate" in capsys.readouterr().err
