"""``transferbench advise`` end to end on a generated image folder and a generated CSV, with tiny models: the race's
rows, pruning, the budget, resuming, the outputs, bad input, and that test labels never steer the answer."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
import yaml
from PIL import Image

from bench.cli.main import main
from bench.core.errors import UserError
from bench.infra import cache


@pytest.fixture()
def isolated(tmp_path, monkeypatch):
    """A fresh cache and a clean registry of own tasks; the tiny BERT stands in for MiniLM (zero-shot class names)."""
    from bench.backbones import text_embed
    from bench.run import features as features_module
    from bench.plan import registry
    from bench.run.taskdata import load_task_data
    from tests.helpers.text_fixtures import tiny_bert

    monkeypatch.setattr(cache, "_override", tmp_path / "cache")
    monkeypatch.setattr(text_embed, "minilm_path", lambda: tiny_bert(tmp_path / "bert"))
    monkeypatch.setenv(registry.OWN_TASKS_ENV, "")
    load_task_data.cache_clear()
    features_module._FEATURES.clear()
    yield tmp_path
    load_task_data.cache_clear()
    features_module._FEATURES.clear()


def photos(root, n=180, seed=1, flip_test=False):
    from tests.helpers.tiny import shapes_images

    x, y = shapes_images(n, seed=seed)
    for i, (pixels, label) in enumerate(zip(x, y)):
        path = root / ("square", "corner", "bar")[int(label)] / f"{i:03d}.png"
        path.parent.mkdir(parents=True, exist_ok=True)
        Image.fromarray(pixels[0].numpy()).save(path)
    return root


def tickets(path, n=240):
    from tests.helpers.text_fixtures import sentences

    texts, labels = sentences(n, seed=1)
    pd.DataFrame({"body": texts, "queue": np.where(labels.numpy() == 1, "positive", "negative")}).to_csv(
        path, index=False)
    return path


def vision_backbone(tmp_path) -> str:
    from tests.helpers.tiny import TINY_MODEL, tiny_weights

    return f"{TINY_MODEL}@{tiny_weights(tmp_path / 'tiny.safetensors')}"


def rows(results_dir) -> list[dict]:
    return [json.loads(p.read_text()) for p in sorted((results_dir / "cells").glob("*.json"))]


VISION = ["feature-extraction", "full-fine-tune", "from-scratch"]  # zero-shot: in the table's test (cheaper there)
SMALL = {"min_steps_per_epoch": 2}  # tiny epochs: the tests check the protocol, not the scores


def test_an_image_folder_gets_an_answer_a_report_and_a_suite_that_loads(isolated, capsys):
    from bench.plan.suite import load_suite

    tmp = isolated
    folder = photos(tmp / "photos")
    out = tmp / "out"
    code = main(["advise", str(folder), "--budget", "45s", "--backbones", vision_backbone(tmp), "--strategies",
                 *VISION, "--results", str(out), "--image-size", "16"])
    captured = capsys.readouterr()
    assert code == 0, captured.err
    answer = captured.out.splitlines()[0]
    assert answer.startswith("use ") and "on held-out data" in answer
    recorded = rows(out)
    race = [r for r in recorded if r["role"] == "race"]
    left_out = {s for line in captured.out.splitlines() if line.strip().startswith("not launched")
                for s in VISION if f"{s} on" in line}
    # Every configuration either ran or is named as left out by the budget (a busy machine leaves some out).
    assert {r["strategy"] for r in race} | left_out == set(VISION) and "feature-extraction" not in left_out
    assert all(r["status"] in ("ok", "pruned", "skipped") for r in race), [r["error"] for r in race]
    trained = [r for r in race if r["strategy"] in ("full-fine-tune", "from-scratch")]
    assert all(r["fidelity_max"] == 2 and 1 <= r["fidelity"] <= 2 for r in trained)  # the 5-minute tier: 2 epochs
    finals = [r for r in recorded if r["role"] == "final"]
    assert finals and all(r["status"] == "ok" for r in finals)
    advice = json.loads((out / "advice.json").read_text())
    assert advice["answer"] == answer and advice["candidates"][0]["best"]
    html = (out / "report.html").read_text(encoding="utf-8")
    assert "Leaderboard" in html
    evidence = (out / "advice.html").read_text(encoding="utf-8")  # every race trial, with why it stopped
    assert evidence.count("<tr") == 1 + len(race) + 1 + len(advice["candidates"])
    suite = load_suite(str(out / "reproduce.yaml"))  # the full-budget comparison reads back as a suite
    assert suite.params["epochs"] == 8 and suite.seeds == [0, 1, 2]
    assert set(suite.strategies) <= set(VISION)

    # Rerunning resumes: every recorded cell is read back, none is run again; only what the first budget left out
    # (named above) may run now, and with nothing left out the answer is the same.
    before = {p.name: p.stat().st_mtime_ns for p in (out / "cells").glob("*.json")}
    assert main(["advise", str(folder), "--budget", "45s", "--backbones", vision_backbone(tmp), "--strategies",
                 *VISION, "--results", str(out), "--image-size", "16", "--no-report"]) == 0
    again = capsys.readouterr()
    after = {p.name: p.stat().st_mtime_ns for p in (out / "cells").glob("*.json")}
    assert all(after[name] == stamp for name, stamp in before.items())
    assert again.err.count("recorded:") == len(race)
    if after == before:
        assert again.out.splitlines()[0] == answer


def test_a_table_gets_an_answer(isolated, capsys):
    from tests.helpers.text_fixtures import vectors_table, write_word2vec_text

    tmp = isolated
    table = tickets(tmp / "tickets.csv")
    vectors = write_word2vec_text(tmp / "tiny.vec", vectors_table())
    out = tmp / "out"
    code = main(["advise", str(table), "--text", "body", "--label", "queue", "--budget", "2m", "--backbones",
                 str(vectors), "--strategies", "feature-extraction", "full-fine-tune", "zero-shot", "--results",
                 str(out), "--no-report"])
    captured = capsys.readouterr()
    assert code == 0, captured.err
    assert captured.out.startswith("use ")
    assert {r["strategy"] for r in rows(out) if r["role"] == "race"} == {"feature-extraction", "full-fine-tune",
                                                                          "zero-shot"}


def test_a_pruned_trial_is_a_race_row_with_its_fidelity(isolated):
    """The probe on learnable data sets a bar that a from-scratch net at a tiny learning rate cannot reach after one
    epoch: the pruner stops it, and its row says so (status pruned, fidelity 1) without counting as an error."""
    from bench.advise import advise

    tmp = isolated
    folder = photos(tmp / "photos")
    out = tmp / "out"
    advise(str(folder), "2m", [vision_backbone(tmp)], ["feature-extraction", "from-scratch"], out, image_size=16,
           report=False, say=lambda line: None, params=SMALL | {"lr": 1e-7})
    race = {r["strategy"]: r for r in rows(out) if r["role"] == "race"}
    scratch = race["from-scratch"]
    # The probe solves the shapes; a random-init net after one epoch does not reach it.
    assert race["feature-extraction"]["status"] == "ok"
    assert scratch["status"] == "pruned" and scratch["fidelity"] == 1 and scratch["pruned_by"] == "pruner"
    assert scratch["error"].startswith("pruner: after epoch 1 of 2")
    curve = json.loads(scratch["curve"])
    assert len(curve) == 1 and scratch["val_accuracy"] == curve[0]["val_accuracy"]
    from bench.results import load_results

    assert "pruner: after epoch 1 of 2" in (out / "advice.html").read_text(encoding="utf-8")  # shown, not hidden
    frame = load_results(out)
    assert (frame["status"] == "error").sum() == 0 and (frame["status"] == "pruned").sum() == 1


def test_a_small_budget_is_respected_and_says_what_it_left_out(isolated):
    from bench.advise import advise

    tmp = isolated
    folder = photos(tmp / "photos")
    lines: list[str] = []
    result = advise(str(folder), "15s", [vision_backbone(tmp)], VISION + ["partial-freeze", "lp-ft"], tmp / "out",
                    image_size=16, report=False, say=lines.append, params=SMALL)
    assert result.spent_s <= 15 * 1.1, (result.spent_s, lines)
    left_out = [n for n in result.notes if n.startswith(("not launched", "final seeds left out"))]
    recorded = rows(tmp / "out")
    stopped = [r for r in recorded if (r.get("error") or "").startswith("budget:")]
    # Either the budget bound (the notes or the rows say where), or all 5 configurations and every final seed ran.
    everything = len([r for r in recorded if r["role"] == "race"]) == 5 and not left_out and not stopped
    assert left_out or stopped or everything, lines


def test_test_labels_never_steer_the_recommendation(isolated, tmp_path):
    """The same images with the held-out test labels permuted give the same choice (only its reported score moves):
    selection reads validation, cut from the training images."""
    from bench.advise import advise

    tmp = isolated
    root = tmp / "split"
    from tests.helpers.tiny import shapes_images

    answers = []
    for permute in (False, True):
        folder = tmp / f"data-{permute}"
        for side, (x, y) in (("train", shapes_images(150, seed=1)), ("test", shapes_images(60, seed=2))):
            labels = y.numpy()
            if permute and side == "test":
                labels = np.random.default_rng(0).permutation(labels)
            for i, (pixels, label) in enumerate(zip(x, labels)):
                path = folder / side / ("square", "corner", "bar")[int(label)] / f"{i:03d}.png"
                path.parent.mkdir(parents=True, exist_ok=True)
                Image.fromarray(pixels[0].numpy()).save(path)
        result = advise(str(folder), "2m", [vision_backbone(tmp)], ["feature-extraction", "full-fine-tune"],
                        tmp / f"out-{permute}", image_size=16, report=False, say=lambda line: None, params=SMALL)
        advice = json.loads((result.results_dir / "advice.json").read_text())
        answers.append([(c["strategy"], c["params"], round(c["val_mean"], 6), c["best"], c["cheapest_within_noise"])
                        for c in advice["candidates"]])
    assert root is not None and answers[0] == answers[1]


@pytest.mark.parametrize("args, message", [
    (["advise", "{tmp}/nothing-here"], "no such file or folder"),
    (["advise", "{tmp}/notes.txt"], "neither a folder nor a table"),
    (["advise", "{tmp}/photos", "--budget", "fast"], "--budget 'fast'"),
    (["advise", "{tmp}/photos", "--backbones", "no-such-net"], "unknown backbone 'no-such-net'"),
    (["advise", "{tmp}/photos", "--strategies", "magic"], "unknown strategy 'magic'"),
    (["advise", "{tmp}/t.csv", "--text", "nope"], "nope"),
])
def test_bad_input_is_one_line_and_exit_2(isolated, capsys, args, message):
    tmp = isolated
    (tmp / "notes.txt").write_text("hello")
    photos(tmp / "photos", n=30)
    tickets(tmp / "t.csv", n=40)
    code = main([a.format(tmp=tmp) for a in args] + ["--results", str(tmp / "out")])
    err = capsys.readouterr().err
    assert code == 2 and message in err and len(err.strip().splitlines()) == 1, err
    assert not list((tmp / "out").glob("cells/*.json"))  # nothing trained


def test_budget_parsing():
    from bench.advise.plan import parse_budget

    assert parse_budget("5m") == 300 and parse_budget("2h") == 7200 and parse_budget("90s") == 90
    for bad in ("fast", "0m", "-5m", "5 days"):
        with pytest.raises(UserError):
            parse_budget(bad)


def test_rungs_rebuilt_from_a_curve_match_the_pruner():
    from bench.advise.race import rung_attrs

    assert rung_attrs({1: 0.5, 2: 0.6, 3: 0.7}) == {"completed_rung_0": 0.5, "completed_rung_1": 0.7}
    assert rung_attrs({}) == {} and yaml is not None


def test_two_backbones_are_ranked_by_logme_before_the_race(isolated):
    """With two candidates, LogME rows (role estimate) come first; the second backbone races unless its LogME trails
    the cheaper first one's by more than the margin, and a dropped one is named in the notes."""
    from bench.advise import advise
    from tests.helpers.tiny import TINY_MODEL, tiny_weights

    tmp = isolated
    folder = photos(tmp / "photos")
    first = vision_backbone(tmp)
    second = f"{TINY_MODEL}@{tiny_weights(tmp / 'other.safetensors', num_classes=10)}"
    result = advise(str(folder), "1m", [first, second], ["feature-extraction"], tmp / "out", image_size=16,
                    report=False, say=lambda line: None, params=SMALL)
    recorded = rows(tmp / "out")
    logme = {r["backbone"]: r["logme"] for r in recorded if r["role"] == "estimate"}
    assert set(logme) == {first, second} and all(v is not None for v in logme.values())
    raced = {r["backbone"] for r in recorded if r["role"] == "race"}
    from bench.advise.advisor import DOMINANCE_MARGIN

    # kept: raced, or left out by the budget on a busy machine (and said so)
    if logme[second] >= logme[first] - DOMINANCE_MARGIN:
        assert raced == {first, second} or any(n.startswith("not launched") and second in n for n in result.notes)
    else:
        assert raced == {first} and any(n.startswith(f"{second} dropped before the race") for n in result.notes)
