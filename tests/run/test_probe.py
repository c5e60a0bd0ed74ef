"""The linear probe (bench.run.probe): the solved problem is scikit-learn's logistic regression, the head folds the
standardisation in, the strength is chosen on validation only, and the full grid is cheap."""

from __future__ import annotations

import time

import numpy as np
import pytest
import torch
from sklearn.datasets import make_classification
from sklearn.linear_model import LogisticRegression

from bench.core.errors import UserError
from bench.run.probe import DEFAULT_L2_GRID, solve_probe


@pytest.fixture(scope="module")
def problem() -> dict[str, torch.Tensor]:
    """600 training samples, 50 features, 5 classes; features on very different scales and offsets."""
    x, y = make_classification(800, 50, n_informative=20, n_classes=5, random_state=0)
    scale = np.random.default_rng(0).uniform(0.01, 100, size=50)
    x = x * scale + 3 * scale
    t = torch.from_numpy(x)
    return {"x": t[:600], "y": torch.from_numpy(y[:600]), "vx": t[600:], "vy": torch.from_numpy(y[600:])}


def standardised(p: dict[str, torch.Tensor]) -> tuple[np.ndarray, np.ndarray]:
    mean, std = p["x"].mean(0), p["x"].std(0, unbiased=False)
    return ((p["x"] - mean) / std).numpy(), ((p["vx"] - mean) / std).numpy()


def sklearn_probe(z: np.ndarray, y: np.ndarray, lam: float) -> LogisticRegression:
    """The same objective: mean loss + lam/2 ||W||^2  ==  (C * sum loss + 1/2 ||W||^2) / (C n) with C = 1/(lam n)."""
    return LogisticRegression(C=1.0 / (lam * len(y)), tol=1e-10, max_iter=10_000).fit(z, y)


def probs(head: torch.nn.Linear, x: torch.Tensor) -> np.ndarray:
    with torch.no_grad():
        return torch.softmax(head(x).double(), 1).numpy()


@pytest.mark.parametrize("lam", [1e-1, 1e-3, 1e-5])
def test_matches_sklearn_logistic_regression(problem, lam):
    z, zv = standardised(problem)
    sk = sklearn_probe(z, problem["y"].numpy(), lam)
    result = solve_probe(problem["x"], problem["y"], problem["vx"], problem["vy"], 5, l2_grid=[lam], tol=1e-8,
                         max_iter=2000)
    assert result.converged and result.curve[0]["grad_norm"] <= 1e-8
    gap = np.abs(probs(result.head, problem["vx"]) - sk.predict_proba(zv)).max()
    assert gap < 1e-4, gap
    # Unfold the head back to the standardised problem: W_std = W_raw * std; sklearn's coef_ lives there too.
    w = (result.head.weight.detach() * problem["x"].std(0, unbiased=False)).numpy()
    assert np.abs(w - sk.coef_).max() < 1e-3 * max(1.0, np.abs(sk.coef_).max())


def test_float32_default_tolerance_is_close_to_sklearn(problem):
    z, zv = standardised(problem)
    sk = sklearn_probe(z, problem["y"].numpy(), 1e-3)
    result = solve_probe(problem["x"].float(), problem["y"], problem["vx"].float(), problem["vy"], 5, l2_grid=1e-3)
    assert result.converged and result.head.weight.dtype == torch.float32
    assert np.abs(probs(result.head, problem["vx"].float()) - sk.predict_proba(zv)).max() < 5e-3


def test_grid_choice_is_the_optimum_at_that_strength(problem):
    """Warm starts along the grid must not change where each solve ends: the chosen head is sklearn's at its l2."""
    result = solve_probe(problem["x"], problem["y"], problem["vx"], problem["vy"], 5, tol=1e-8, max_iter=2000)
    assert [p["l2"] for p in result.curve] == sorted(DEFAULT_L2_GRID, reverse=True)
    assert result.l2 == result.curve[result.index]["l2"]
    assert result.val_score == max(p["val_accuracy"] for p in result.curve)
    assert result.iterations == sum(p["iterations"] for p in result.curve)
    z, zv = standardised(problem)
    sk = sklearn_probe(z, problem["y"].numpy(), result.l2)
    assert np.abs(probs(result.head, problem["vx"]) - sk.predict_proba(zv)).max() < 1e-4


def test_head_on_raw_features_equals_the_standardised_problem(problem):
    """Folding: head(raw x) == logits of the problem solved on standardised features (train statistics)."""
    raw = solve_probe(problem["x"], problem["y"], problem["vx"], problem["vy"], 5, l2_grid=[1e-2], tol=1e-9)
    z, zv = (torch.from_numpy(a) for a in standardised(problem))
    std = solve_probe(z, problem["y"], zv, problem["vy"], 5, l2_grid=[1e-2], tol=1e-9)
    with torch.no_grad():
        assert torch.allclose(raw.head(problem["vx"]), std.head(zv), atol=1e-6)
        assert torch.allclose(raw.head(problem["x"]), std.head(z), atol=1e-6)
    assert raw.curve[0]["val_accuracy"] == std.curve[0]["val_accuracy"]


def test_zero_variance_feature_changes_nothing(problem):
    base = solve_probe(problem["x"], problem["y"], problem["vx"], problem["vy"], 5, l2_grid=[1e-2], tol=1e-9)
    const = lambda t: torch.cat([t, torch.full((len(t), 2), 0.1, dtype=t.dtype)], 1)  # noqa: E731
    padded = solve_probe(const(problem["x"]), problem["y"], const(problem["vx"]), problem["vy"], 5, l2_grid=[1e-2],
                         tol=1e-9)
    assert torch.isfinite(padded.head.weight).all()
    assert np.abs(probs(padded.head, const(problem["vx"])) - probs(base.head, problem["vx"])).max() < 1e-6
    as32 = solve_probe(const(problem["x"]).float(), problem["y"], const(problem["vx"]).float(), problem["vy"], 5,
                       l2_grid=[1e-2])
    assert as32.head.weight[:, -2:].abs().max() < 1e-3  # float32 rounding did not turn the constant into a feature


def test_weights_never_see_validation_and_choice_reads_only_validation(problem):
    x, y, vx, vy = problem["x"], problem["y"], problem["vx"], problem["vy"]
    grid = [10.0, 1e-4]
    # At a fixed strength the weights do not depend on the validation split at all.
    a = solve_probe(x, y, vx, vy, 5, l2_grid=grid[1:])
    b = solve_probe(x, y, vx[:7] * 1e3 + 5, torch.zeros(7, dtype=torch.long), 5, l2_grid=grid[1:])
    assert torch.equal(a.head.weight, b.head.weight) and torch.equal(a.head.bias, b.head.bias)
    # Validation labels that agree with one strength's predictions make the grid choose that strength.
    strong = solve_probe(x, y, vx, vy, 5, l2_grid=grid[:1]).head(vx).argmax(1).detach()
    weak = a.head(vx).argmax(1).detach()
    assert (strong != weak).any()
    assert solve_probe(x, y, vx, strong, 5, l2_grid=grid).l2 == 10.0
    assert solve_probe(x, y, vx, weak, 5, l2_grid=grid).l2 == 1e-4


def separable(n: int = 200) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(0)
    y = torch.arange(n) % 2
    return torch.randn(n, 5, generator=g) + 8.0 * (2 * y[:, None] - 1), y  # far apart: separable


def test_ties_go_to_the_stronger_strength_and_macro_f1_can_choose(problem):
    x, y = separable()
    result = solve_probe(x, y, x[:20], y[:20], 2, l2_grid=[1e-3, 1e-1, 1e-5])
    assert all(p["val_accuracy"] == 1.0 for p in result.curve)
    assert result.l2 == 1e-1 and result.index == 0
    f1 = solve_probe(problem["x"], problem["y"], problem["vx"], problem["vy"], 5, l2_grid=[1e-1, 1e-3],
                     metric="macro_f1")
    assert f1.val_score == max(p["val_macro_f1"] for p in f1.curve)


def test_separable_problem_with_weak_regularisation_stays_finite():
    x, y = separable()
    for dtype in (torch.float32, torch.float64):
        result = solve_probe(x.to(dtype), y, x.to(dtype), y, 2, l2_grid=[1e-6, 1e-9], max_iter=300)
        assert torch.isfinite(result.head.weight).all() and torch.isfinite(result.head.bias).all()
        assert all(np.isfinite(p["train_loss"]) for p in result.curve)
        assert result.curve[-1]["train_accuracy"] == 1.0 and result.val_score == 1.0


def test_deterministic(problem):
    a = solve_probe(problem["x"].float(), problem["y"], problem["vx"].float(), problem["vy"], 5)
    b = solve_probe(problem["x"].float(), problem["y"], problem["vx"].float(), problem["vy"], 5)
    assert torch.equal(a.head.weight, b.head.weight) and a.l2 == b.l2 and a.iterations == b.iterations


@pytest.mark.parametrize("grid, metric, match", [([-1.0], "accuracy", "positive"), ([], "accuracy", "positive"),
                                                 ([float("nan")], "accuracy", "positive"), (None, "auc", "metric")])
def test_bad_grid_or_metric_is_a_user_error(problem, grid, metric, match):
    with pytest.raises(UserError, match=match):
        solve_probe(problem["x"], problem["y"], problem["vx"], problem["vy"], 5, l2_grid=grid, metric=metric)


def test_non_finite_features_are_refused(problem):
    x = problem["x"].clone()
    x[3, 4] = float("nan")
    with pytest.raises(FloatingPointError, match="NaN"):
        solve_probe(x, problem["y"], problem["vx"], problem["vy"], 5)


def test_full_grid_on_a_realistic_size_is_cheap():
    """5000 x 1280 features (EfficientNet-B0 width), 10 classes, the default grid: seconds on one CPU thread."""
    # Like CNN features: correlated (a 128-d latent spread over 1280 channels), positive, classes overlapping.
    g = torch.Generator().manual_seed(0)
    y = torch.arange(6000) % 10
    latent = torch.randn(10, 128, generator=g)[y] * 0.15 + torch.randn(6000, 128, generator=g)
    x = torch.relu(latent @ torch.randn(128, 1280, generator=g) / 8 + 0.3 * torch.randn(6000, 1280, generator=g))
    t0 = time.perf_counter()
    result = solve_probe(x[:5000], y[:5000], x[5000:], y[5000:], 10)
    seconds = time.perf_counter() - t0
    print(f"probe 5000x1280x10, {len(result.curve)} strengths: {seconds:.1f} s, {result.iterations} iterations, "
          f"l2={result.l2:.2g}, val={result.val_score:.3f}")
    assert seconds < 30
    assert result.converged and 0.3 < result.val_score < 0.9
    assert 1e-6 < result.l2 < 1e2  # overlapping classes: neither end of the grid wins


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_cuda_matches_cpu(problem):
    cpu = solve_probe(problem["x"].float(), problem["y"], problem["vx"].float(), problem["vy"], 5)
    cuda = solve_probe(problem["x"].float().cuda(), problem["y"].cuda(), problem["vx"].float().cuda(),
                       problem["vy"].cuda(), 5)
    assert cuda.head.weight.is_cuda and cuda.l2 == cpu.l2
    assert np.abs(probs(cuda.head.cpu(), problem["vx"].float()) - probs(cpu.head, problem["vx"].float())).max() < 1e-3
