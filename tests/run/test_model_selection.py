"""The one model-selection rule of every training loop: best validation epoch kept, patience stops early."""

from __future__ import annotations

import torch

from bench.run.train import FitResult, ModelSelection, Scores


def test_best_epoch_is_kept_and_restored_and_patience_stops():
    model = torch.nn.Linear(2, 2)
    selection, result = ModelSelection("accuracy", patience=2), FitResult()
    stops = []
    for epoch, acc in enumerate([0.5, 0.7, 0.6, 0.65, 0.9], start=1):
        with torch.no_grad():
            model.weight.fill_(epoch)  # the weights say which epoch they are from
        stops.append(selection.stop_after(model, epoch, Scores(acc, acc), result))
        if stops[-1]:
            break
    assert stops == [False, False, False, True]  # two epochs without gain after epoch 2: stop, never see 0.9
    assert result.best_epoch == 2 and result.best_val.accuracy == 0.7
    selection.restore(model)
    assert torch.all(model.weight == 2)


def test_without_patience_every_epoch_runs():
    selection, result = ModelSelection("macro_f1", patience=None), FitResult()
    model = torch.nn.Linear(1, 1)
    assert not any(selection.stop_after(model, e, Scores(0.9, 1.0 / e), result) for e in range(1, 6))
    assert result.best_epoch == 1  # macro-F1 read, not accuracy
