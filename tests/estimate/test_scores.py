"""Transferability estimators on synthetic data whose right answer is known."""

from __future__ import annotations

import time

import numpy as np
import pytest
from scipy.optimize import minimize_scalar

from bench.estimate.scores import ESTIMATORS, h_score, leep, logme, nce


def _clustered(rng: np.random.Generator, n: int, d: int, n_classes: int, sep: float) -> tuple[np.ndarray, np.ndarray]:
    """Features = class centre * sep + unit noise; every class present."""
    y = rng.permutation(np.arange(n) % n_classes)
    return (rng.normal(size=(n_classes, d)) * sep)[y] + rng.normal(size=(n, d)), y


def _softmax(logits: np.ndarray) -> np.ndarray:
    e = np.exp(logits - logits.max(axis=1, keepdims=True))
    return e / e.sum(axis=1, keepdims=True)


def _source_probs(rng: np.random.Generator, y: np.ndarray, n_source: int, signal: float) -> np.ndarray:
    """Source softmax whose argmax tracks the target label (source class y mod n_source) with strength signal."""
    logits = rng.normal(size=(y.size, n_source))
    logits[np.arange(y.size), y % n_source] += signal
    return _softmax(logits)


def _brute_logme(f: np.ndarray, y: np.ndarray) -> float:
    """LogME from the marginal likelihood N(y; 0, beta^-1 I + alpha^-1 F F^T), no SVD tricks.

    For fixed t = alpha / beta the best beta is closed form, so we maximise the profile over log t (grid, then
    a bounded 1-D refinement around the best grid point).
    """
    n = f.shape[0]
    gram = f @ f.T

    def neg_profile(log_t: float, yc: np.ndarray) -> float:
        chol = np.linalg.cholesky(np.eye(n) + gram / np.exp(log_t))
        z = np.linalg.solve(chol, yc)
        return -(-0.5 * n * np.log(2 * np.pi * z @ z / n) - np.sum(np.log(np.diag(chol))) - 0.5 * n)

    out = []
    for c in np.unique(y):
        yc = (y == c).astype(float)
        grid = np.linspace(-25.0, 25.0, 201)
        i = int(np.argmin([neg_profile(g, yc) for g in grid]))
        lo, hi = grid[max(i - 1, 0)], grid[min(i + 1, grid.size - 1)]
        best = minimize_scalar(neg_profile, bounds=(lo, hi), args=(yc,), method="bounded", options={"xatol": 1e-10})
        out.append(-min(best.fun, neg_profile(grid[i], yc)) / n)
    return float(np.mean(out))


# ------------------------------------------------------------------------------------------ higher is better


@pytest.mark.parametrize("name", ["logme", "h_score"])
@pytest.mark.parametrize("n,d", [(400, 32), (60, 200)])
def test_clustered_features_beat_random_features(name: str, n: int, d: int) -> None:
    rng = np.random.default_rng(0)
    f_good, y = _clustered(rng, n, d, 4, sep=1.5)
    f_rand = rng.normal(size=(n, d))
    fn = ESTIMATORS[name].fn
    assert fn(f_good, y) > fn(f_rand, y) + 0.1


@pytest.mark.parametrize("name", ["nce", "leep"])
def test_informative_source_beats_random_source(name: str) -> None:
    rng = np.random.default_rng(1)
    y = rng.integers(0, 5, 2000)
    fn = ESTIMATORS[name].fn
    assert fn(_source_probs(rng, y, 10, signal=4.0), y) > fn(_source_probs(rng, y, 10, signal=0.0), y) + 0.3


# ---------------------------------------------------------------------------------------------------- LogME


@pytest.mark.parametrize("n,d,sep", [(60, 10, 1.0), (60, 10, 0.0), (15, 40, 1.0), (20, 50, 0.0), (30, 30, 0.5)])
def test_logme_matches_brute_force_evidence(n: int, d: int, sep: float) -> None:
    f, y = _clustered(np.random.default_rng(2), n, d, 3, sep)
    assert logme(f, y) == pytest.approx(_brute_logme(f, y), abs=1e-6)


@pytest.mark.parametrize("n,d", [(300, 20), (25, 80)])
def test_logme_invariant_to_rotation_scale_and_duplication(n: int, d: int) -> None:
    # The evidence depends on F only through F F^T, and a global scale of F F^T is absorbed by alpha, so at
    # the maximum these maps change nothing: rotation (F Q), scale (c F), duplication ([F, F] F^T-Gram x2).
    rng = np.random.default_rng(3)
    f, y = _clustered(rng, n, d, 3, sep=0.8)
    q, _ = np.linalg.qr(rng.normal(size=(d, d)))
    base = logme(f, y)
    assert np.isfinite(base)
    for g in (f @ q, 7.5 * f, np.hstack([f, f]), np.hstack([f, f, f, np.zeros((n, 5))])):
        assert logme(g, y) == pytest.approx(base, abs=1e-8)


def test_logme_deterministic_and_label_encoding_free() -> None:
    rng = np.random.default_rng(4)
    f, y = _clustered(rng, 200, 30, 3, sep=1.0)
    first = logme(f, y)
    assert logme(f, y) == first
    assert logme(f.astype(np.float32), y) == pytest.approx(first, abs=1e-5)
    assert logme(f, np.array(["cat", "dog", "eel"])[y]) == pytest.approx(first, abs=1e-12)
    perm = rng.permutation(200)
    assert logme(f[perm], y[perm]) == pytest.approx(first, abs=1e-10)


def test_logme_rank_deficient_and_degenerate_targets_stay_finite() -> None:
    rng = np.random.default_rng(5)
    f, y = _clustered(rng, 100, 6, 3, sep=1.0)
    basis, _ = np.linalg.qr(rng.normal(size=(50, 6)))
    low_rank = 3.0 * f @ basis.T  # 100 x 50 of rank 6 with the same F F^T up to scale
    assert logme(low_rank, y) == pytest.approx(logme(f, y), abs=1e-6)
    f[y == 0] = 0.0  # class 0's indicator is orthogonal to every feature direction: w = 0 is optimal for it
    assert np.isfinite(logme(f, y))


def test_logme_timing_5000_by_1280() -> None:
    rng = np.random.default_rng(6)
    f, y = _clustered(rng, 5000, 1280, 10, sep=0.2)
    start = time.perf_counter()
    score = logme(f.astype(np.float32), y)
    assert np.isfinite(score)
    assert time.perf_counter() - start < 20.0


# -------------------------------------------------------------------------------------------------- H-score


def test_h_score_invariant_to_invertible_linear_map() -> None:
    rng = np.random.default_rng(7)
    f, y = _clustered(rng, 2000, 16, 4, sep=0.7)
    q, _ = np.linalg.qr(rng.normal(size=(16, 16)))
    a = q * np.exp(rng.uniform(-1.0, 1.0, 16))  # rotation then per-dimension scaling
    plain = h_score(f, y, shrinkage=0.0)
    assert h_score(f @ a + 3.0, y, shrinkage=0.0) == pytest.approx(plain, rel=1e-9)
    # Shrinkage towards a scaled identity is not linear-map invariant, but with n >> d it barely matters.
    assert h_score(f @ a, y) == pytest.approx(h_score(f, y), rel=0.05)
    assert 0.0 < plain <= 4 - 1  # between / total covariance: at most C - 1


def test_h_score_shrinkage_regularises_n_below_d() -> None:
    rng = np.random.default_rng(8)
    f, y = _clustered(rng, 40, 200, 4, sep=0.0)
    # Unregularised, 40 samples in 200-d make any labels look perfectly separable; shrinkage removes that.
    assert h_score(f, y, shrinkage=0.0) == pytest.approx(3.0, rel=1e-6)
    assert h_score(f, y) < 0.5 * h_score(f, y, shrinkage=0.0)
    assert h_score(np.ones((40, 5)), y) == 0.0


# --------------------------------------------------------------------------------------------- NCE and LEEP


def test_nce_and_leep_when_source_determines_target() -> None:
    rng = np.random.default_rng(9)
    z = rng.integers(0, 12, 3000)
    y = z % 4  # every source class maps to exactly one target class
    onehot = np.eye(12)[z]
    assert nce(z, y) == 0.0
    assert nce(onehot, y) == 0.0
    assert leep(onehot, y) == pytest.approx(0.0, abs=1e-12)
    peaked = 0.99 * onehot + 0.01 / 12
    assert -0.05 < leep(peaked, y) <= 0.0


def test_nce_random_source_is_minus_log_classes() -> None:
    rng = np.random.default_rng(10)
    n_target = 5
    y = rng.integers(0, n_target, 40000)
    z = rng.integers(0, 10, 40000)
    assert nce(z, y) == pytest.approx(-np.log(n_target), abs=0.01)


def test_leep_equals_nce_on_one_hot_and_bounds_it_on_soft_probs() -> None:
    rng = np.random.default_rng(11)
    y = rng.integers(0, 4, 1500)
    soft = _source_probs(rng, y, 9, signal=1.5)
    z = soft.argmax(axis=1)
    assert leep(np.eye(9)[z], y) == pytest.approx(nce(z, y), abs=1e-12)
    # Nguyen et al., Theorem 1: LEEP >= NCE + mean log theta(x_i)_{z_i}.
    bound = nce(soft, y) + np.mean(np.log(soft[np.arange(y.size), z]))
    assert leep(soft, y) >= bound
    assert leep(soft, y) <= 0.0


def test_leep_survives_unused_source_classes_and_tiny_probabilities() -> None:
    rng = np.random.default_rng(12)
    y = rng.integers(0, 3, 300)
    probs = np.zeros((300, 6))
    probs[:, :3] = _source_probs(rng, y, 3, signal=60.0)  # some entries underflow to ~1e-26; 3 classes unused
    score = leep(probs, y)
    assert np.isfinite(score) and score <= 0.0


# ----------------------------------------------------------------------------------------------- bad inputs


@pytest.mark.parametrize(
    "call, message",
    [
        (lambda: logme(np.zeros((10, 3)) + 1, np.arange(9) % 2), "must match"),
        (lambda: logme(np.ones((10, 3)), np.zeros(10)), "at least 2 classes"),
        (lambda: logme(np.ones(10), np.arange(10) % 2), "2-D"),
        (lambda: logme(np.zeros((10, 3)), np.arange(10) % 2), "rank 0"),
        (lambda: logme(np.full((4, 2), np.nan), np.arange(4) % 2), "NaN"),
        (lambda: h_score(np.ones((10, 3)), np.arange(10).reshape(5, 2)), "1-D"),
        (lambda: h_score(np.ones((10, 3)), np.arange(10) % 2, shrinkage=1.5), "shrinkage"),
        (lambda: nce(np.arange(10), np.arange(11) % 2), "must match"),
        (lambda: nce(np.zeros((4, 2, 2)), np.arange(4) % 2), "source_pred"),
        (lambda: leep(np.random.default_rng(0).normal(size=(10, 3)), np.arange(10) % 2), "logits"),
        (lambda: leep(np.full((10, 3), 1 / 3), np.zeros(10)), "at least 2 classes"),
        (lambda: leep(np.ones((10, 1)), np.arange(10) % 2), "n_source_classes"),
    ],
)
def test_bad_input_raises_value_error(call, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        call()


def test_estimator_metadata_lists_every_estimator() -> None:
    assert set(ESTIMATORS) == {"logme", "h_score", "nce", "leep"}
    for name, info in ESTIMATORS.items():
        assert info.name == name and callable(info.fn) and info.description and info.citation
        assert info.higher_is_better
    assert [n for n, i in ESTIMATORS.items() if i.needs_source_probs] == ["nce", "leep"]
