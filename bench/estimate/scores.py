"""Transferability estimators computed from a frozen model's outputs on the target data (no training).

* :func:`logme` and :func:`h_score` take the model's *features* (n x d) and the target labels.
* :func:`nce` and :func:`leep` take the *source classifier head*'s output on the target inputs and the target
  labels.

Every score is "higher is better" and is computed in float64. Bad shapes or values raise ``ValueError`` with
one line saying what is wrong; callers facing users turn it into their own error type.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
from scipy.special import logsumexp
from sklearn.covariance import empirical_covariance, ledoit_wolf, shrunk_covariance

# LogME's fixed-point iteration converges linearly; it is O(rank) per step, so a tight tolerance is cheap.
_LOGME_TOL = 1e-10
_LOGME_MAX_ITER = 1000
# Floors that only stop a literal 0/0; scaled to each quantity's natural size so they never bias a score.
_FLOOR = 1e-30
# How far source probability rows may sum away from 1 before we reject them (float32 softmax is within ~1e-6).
_PROB_SUM_TOL = 1e-3


# ----------------------------------------------------------------------------------------------- validation


def _as_features(features: np.ndarray) -> np.ndarray:
    f = np.asarray(features, dtype=np.float64)
    if f.ndim != 2 or f.shape[0] == 0 or f.shape[1] == 0:
        raise ValueError(f"features must be a non-empty 2-D array (n_samples, n_dims), got shape {f.shape}")
    if not np.all(np.isfinite(f)):
        raise ValueError("features contain NaN or inf; check the backbone's outputs")
    return f


def _as_labels(labels: np.ndarray, n: int, what: str = "labels") -> tuple[np.ndarray, int]:
    """Map any 1-D label array to codes 0..C-1; require n entries and at least 2 distinct classes."""
    y = np.asarray(labels)
    if y.ndim != 1:
        raise ValueError(f"{what} must be a 1-D array of class ids, got shape {y.shape}")
    if y.shape[0] != n:
        raise ValueError(f"{what} has {y.shape[0]} entries but there are {n} samples; they must match")
    classes, codes = np.unique(y, return_inverse=True)
    if classes.size < 2:
        raise ValueError(f"{what} must contain at least 2 classes, got {classes.size}")
    return codes.reshape(-1), int(classes.size)


def _as_probs(source_probs: np.ndarray) -> np.ndarray:
    p = np.asarray(source_probs, dtype=np.float64)
    if p.ndim != 2 or p.shape[0] == 0 or p.shape[1] < 2:
        raise ValueError(f"source_probs must be a 2-D array (n_samples, n_source_classes >= 2), got shape {p.shape}")
    if not np.all(np.isfinite(p)) or np.any(p < 0):
        raise ValueError("source_probs must be finite and non-negative; pass softmax probabilities, not logits")
    sums = p.sum(axis=1)
    if np.any(np.abs(sums - 1.0) > _PROB_SUM_TOL):
        raise ValueError("source_probs rows must sum to 1; pass softmax probabilities, not logits")
    return p / sums[:, None]  # remove float32 round-off so the joint distribution sums to exactly 1


# ----------------------------------------------------------------------------------------------------- LogME


def _feature_spectrum(f: np.ndarray) -> tuple[np.ndarray, np.ndarray | None, np.ndarray | None]:
    """Return (sigma, U, V): non-zero eigenvalues of F^T F, and either U (n x k) or V (d x k) of F = U S V^T.

    One decomposition serves every class. For n <= d we take the thin SVD of F (cost n^2 d); for n > d the
    symmetric eigendecomposition of the d x d Gram matrix F^T F (cost n d^2 + d^3), which is far cheaper for
    the usual "many samples, fixed feature width" case. Numerically zero directions are dropped: they carry
    no signal, and the evidence below is written over the k = rank(F) non-zero eigenvalues only.
    """
    n, d = f.shape
    if n <= d:
        u, s, _ = np.linalg.svd(f, full_matrices=False)
        sigma, v = s**2, None
    else:
        sigma, v = np.linalg.eigh(f.T @ f)
        u = None
    keep = sigma > max(n, d) * np.finfo(np.float64).eps * max(float(sigma.max()), 0.0)
    if not np.any(keep):
        raise ValueError("features have rank 0 (all zeros?); LogME needs informative features")
    return sigma[keep], (u[:, keep] if u is not None else None), (v[:, keep] if v is not None else None)


def _max_log_evidence(sigma: np.ndarray, x2: np.ndarray, res_x2: float, n: int) -> float:
    """Maximise the evidence of one target over (alpha, beta) by the paper's fixed-point updates.

    Model: y = F w + eps, w ~ N(0, alpha^-1 I), eps ~ N(0, beta^-1 I). In the SVD basis (x = U^T y), with
    t = alpha / beta, the posterior mean m gives
        ||m||^2 = sum sigma x^2 / (sigma + t)^2,   ||F m - y||^2 = sum x^2 t^2 / (sigma + t)^2 + res_x2,
    and the updates are gamma = sum sigma / (sigma + t), alpha = gamma / ||m||^2, beta = (n - gamma) / ||Fm-y||^2.
    The log evidence, written over the k non-zero eigenvalues (the d - k zero ones cancel exactly against
    d/2 log alpha), is
        n/2 log beta - 1/2 sum log(1 + sigma / t) - beta/2 ||Fm-y||^2 - alpha/2 ||m||^2 - n/2 log 2 pi.
    When the supremum lies on a boundary (t -> inf: w = 0; t -> 0: exact interpolation when k = n) the
    iteration only creeps towards it, so we also take the closed-form boundary limits. Returns evidence / n.
    """
    yy = float(x2.sum() + res_x2)
    m2_floor, res_floor = _FLOOR * yy / float(sigma.max()), _FLOOR * yy
    t_lo, t_hi = float(sigma.min()) * 1e-200, float(sigma.max()) * 1e200  # past these t sits at its limit
    alpha, beta = 1.0, 1.0  # the paper's initialisation
    for _ in range(_LOGME_MAX_ITER):
        t = alpha / beta
        gamma = float(np.sum(sigma / (sigma + t)))
        m2 = float(np.sum(sigma * x2 / (sigma + t) ** 2))
        res2 = float(np.sum(x2 * (t / (sigma + t)) ** 2)) + res_x2
        alpha_new = gamma / max(m2, m2_floor)
        beta_new = (n - gamma) / max(res2, res_floor)
        t_new = alpha_new / beta_new if beta_new > 0 else np.inf
        if not t_lo < t_new < t_hi:
            break  # heading to a boundary; keep the last finite (alpha, beta)
        alpha, beta = alpha_new, beta_new
        if abs(t_new - t) <= _LOGME_TOL * t:
            break
    # Evaluate at the final (alpha, beta) with m recomputed for it, so the value is a true evidence.
    t = alpha / beta
    m2 = float(np.sum(sigma * x2 / (sigma + t) ** 2))
    res2 = float(np.sum(x2 * (t / (sigma + t)) ** 2)) + res_x2
    const = -0.5 * n * np.log(2.0 * np.pi)
    evidence = (
        0.5 * n * np.log(beta) - 0.5 * float(np.sum(np.log1p(sigma / t))) - 0.5 * beta * res2 - 0.5 * alpha * m2
    )
    # Limits of the evidence maximised over beta for fixed t (beta = n / (res2 + t m2)).
    limits = [0.5 * n * np.log(n / yy) - 0.5 * n]  # t -> inf
    if sigma.size == n:  # t -> 0 is finite only when F F^T is invertible; then res_x2 = 0 exactly
        limits.append(0.5 * n * np.log(n / float(np.sum(x2 / sigma))) - 0.5 * n - 0.5 * float(np.sum(np.log(sigma))))
    return float(const + max(evidence, *limits)) / n


def logme(features: np.ndarray, labels: np.ndarray) -> float:
    """LogME: mean per-sample log marginal evidence of a Bayesian linear model from features to labels.

    You et al., "LogME: Practical Assessment of Pre-trained Models for Transfer Learning", ICML 2021. Each
    class gets a one-hot regression target; its evidence is maximised over the prior precision alpha and the
    noise precision beta by the paper's fixed-point iteration, sharing one SVD of the feature matrix. The
    score is the per-class evidence divided by n, averaged over classes. Features are used as given (the
    paper adds no bias and no centring).

    Args:
        features: (n, d) features of the target samples; n < d and n > d both work.
        labels: (n,) class labels of any hashable dtype; at least 2 classes.

    Returns:
        The LogME score (higher is better); typically in about [-2, 2].

    Raises:
        ValueError: bad shapes, non-finite or all-zero features, fewer than 2 classes.
    """
    f = _as_features(features)
    n = f.shape[0]
    codes, n_classes = _as_labels(labels, n)
    onehot = np.zeros((n, n_classes))
    onehot[np.arange(n), codes] = 1.0
    sigma, u, v = _feature_spectrum(f)
    # x = U^T y for every class at once; with the Gram route U^T = S^-1 V^T F^T.
    x = u.T @ onehot if u is not None else (v.T @ (f.T @ onehot)) / np.sqrt(sigma)[:, None]
    x2 = x**2
    counts = onehot.sum(axis=0)  # ||y_c||^2 for a 0/1 target
    # The part of y outside F's column space: none when rank = n; clipped since round-off can make it < 0.
    res_x2 = np.zeros(n_classes) if sigma.size == n else np.maximum(counts - x2.sum(axis=0), 0.0)
    evidences = [_max_log_evidence(sigma, x2[:, c], float(res_x2[c]), n) for c in range(n_classes)]
    return float(np.mean(evidences))


# --------------------------------------------------------------------------------------------------- H-score


def h_score(features: np.ndarray, labels: np.ndarray, shrinkage: float | None = None) -> float:
    """H-score tr(cov(f)^-1 cov(E[f|y])), regularised by shrinking the feature covariance.

    Bao et al., "An Information-Theoretic Approach to Transferability in Task Transfer Learning", ICIP 2019;
    regularised form of Ibrahim et al., "Newer is not always better: Rethinking transferability metrics,
    their peculiarities, stability and performance", ECML-PKDD 2022:
    ``tr(cov_a(f)^-1 (1 - a) cov(E[f|y]))`` with ``cov_a = (1 - a) cov(f) + a mu I``. Both covariances are
    the maximum-likelihood (divide by n) ones, so with ``a = 0`` the score lies in [0, min(d, C - 1)].

    Args:
        features: (n, d) features of the target samples.
        labels: (n,) class labels; at least 2 classes.
        shrinkage: ``None`` (default) estimates ``a`` by Ledoit-Wolf; a number in [0, 1] fixes it. ``0`` is
            the original, unregularised H-score (pseudo-inverse), invariant to invertible linear maps of f.

    Returns:
        The H-score (higher is better).

    Raises:
        ValueError: bad shapes, non-finite features, fewer than 2 classes, shrinkage outside [0, 1].
    """
    f = _as_features(features)
    codes, n_classes = _as_labels(labels, f.shape[0])
    if shrinkage is not None and not 0.0 <= shrinkage <= 1.0:
        raise ValueError(f"shrinkage must be None (Ledoit-Wolf) or in [0, 1], got {shrinkage}")
    f = f - f.mean(axis=0)
    if not np.any(f):
        return 0.0  # constant features carry no information about y (and would make Ledoit-Wolf divide 0 by 0)
    if shrinkage is None:
        cov_f, a = ledoit_wolf(f, assume_centered=True)
    else:
        a = float(shrinkage)
        cov_f = shrunk_covariance(empirical_covariance(f, assume_centered=True), shrinkage=a)
    # cov(E[f|y]) = sum_c p_c mu_c mu_c^T = W^T W for centred f, with rows W_c = sqrt(p_c) mu_c (C x d).
    counts = np.bincount(codes, minlength=n_classes).astype(np.float64)
    means = np.zeros((n_classes, f.shape[1]))
    np.add.at(means, codes, f)
    w = means / counts[:, None] * np.sqrt(counts / counts.sum())[:, None]
    # tr(cov_f^-1 W^T W) = sum(W^T * cov_f^-1 W^T): solve for C right-hand sides instead of inverting.
    if a > 0.0:
        solved = np.linalg.solve(cov_f, w.T)  # shrinkage towards mu I > 0 makes cov_f positive definite
    else:
        solved = np.linalg.lstsq(cov_f, w.T, rcond=None)[0]  # minimum-norm solution = pseudo-inverse
    return float((1.0 - a) * np.sum(w.T * solved))


# ---------------------------------------------------------------------------------------------- NCE and LEEP


def _hard_predictions(source_pred: np.ndarray) -> np.ndarray:
    z = np.asarray(source_pred)
    if z.ndim == 2:
        if z.shape[0] == 0 or z.shape[1] == 0 or not np.all(np.isfinite(z)):
            raise ValueError(f"source_pred must be finite and non-empty, got shape {z.shape}")
        return z.argmax(axis=1)
    if z.ndim != 1 or z.shape[0] == 0:
        raise ValueError(f"source_pred must be (n,) source class ids or (n, n_source_classes) scores, got {z.shape}")
    return np.unique(z, return_inverse=True)[1].reshape(-1)


def nce(source_pred: np.ndarray, target: np.ndarray) -> float:
    """NCE: negative conditional entropy -H(Y|Z) of target labels Y given the source model's hard label Z.

    Tran et al., "Transferability and Hardness of Supervised Classification Tasks", ICCV 2019. Computed from
    the empirical joint distribution of (y, z); 0 log 0 is taken as 0.

    Args:
        source_pred: (n,) predicted source labels, or (n, n_source_classes) probabilities/logits (argmax taken).
        target: (n,) target labels; at least 2 classes.

    Returns:
        -H(Y|Z) in nats: 0 when Z determines Y, about -log(C) when Z is independent of C balanced classes.

    Raises:
        ValueError: bad shapes, sample counts that differ, fewer than 2 target classes.
    """
    z = _hard_predictions(source_pred)
    y, n_target = _as_labels(target, z.shape[0], what="target")
    joint = np.zeros((n_target, int(z.max()) + 1))
    np.add.at(joint, (y, z), 1.0 / z.shape[0])
    p_z = joint.sum(axis=0, keepdims=True)
    nz = joint > 0  # only observed cells contribute; they also have p_z > 0
    return float(np.sum(joint[nz] * np.log(joint[nz] / np.broadcast_to(p_z, joint.shape)[nz])))


def leep(source_probs: np.ndarray, target: np.ndarray) -> float:
    """LEEP: mean log-likelihood of the target labels under the "expected empirical predictor".

    Nguyen et al., "LEEP: A New Measure to Evaluate Transferability of Learned Representations", ICML 2020.
    With source probabilities theta(x_i) (n x Z): joint P(y, z) = 1/n sum_{i: y_i = y} theta(x_i)_z,
    P(y|z) = P(y, z) / P(z), and LEEP = 1/n sum_i log sum_z P(y_i|z) theta(x_i)_z (computed by log-sum-exp).

    Args:
        source_probs: (n, n_source_classes) softmax probabilities of the source classifier (rows sum to 1).
        target: (n,) target labels; at least 2 classes.

    Returns:
        LEEP (<= 0, higher is better). By the paper's theorem LEEP >= NCE + mean log theta(x_i)_{z_i}; on
        one-hot probabilities it equals NCE.

    Raises:
        ValueError: bad shapes, logits instead of probabilities, sample counts that differ, < 2 classes.
    """
    theta = _as_probs(source_probs)
    n = theta.shape[0]
    y, n_target = _as_labels(target, n, what="target")
    joint = np.zeros((n_target, theta.shape[1]))
    np.add.at(joint, y, theta / n)
    p_z = joint.sum(axis=0)
    # A source class no sample puts mass on has P(z) = 0; its P(y|z) never multiplies a non-zero theta.
    cond = np.divide(joint, p_z, out=np.zeros_like(joint), where=p_z > 0)  # P(y|z), shape (C_t, C_s)
    with np.errstate(divide="ignore"):
        log_terms = np.log(cond[y]) + np.log(theta)  # (n, C_s); log 0 = -inf drops out of the sum
    # Each sum is a probability, so its log is <= 0; clip the round-off that can push it a hair above.
    return float(np.mean(np.minimum(logsumexp(log_terms, axis=1), 0.0)))


# -------------------------------------------------------------------------------------------------- metadata


@dataclass(frozen=True)
class EstimatorInfo:
    """What a CLI or report needs to list, describe and call one estimator."""

    name: str
    fn: Callable[..., float]
    needs_source_probs: bool  # True: called with the source head's (n, Z) outputs; False: with (n, d) features
    description: str
    citation: str
    higher_is_better: bool = True


ESTIMATORS: dict[str, EstimatorInfo] = {
    info.name: info
    for info in (
        EstimatorInfo(
            name="logme",
            fn=logme,
            needs_source_probs=False,
            description="Log marginal evidence of a Bayesian linear model from features to one-hot labels.",
            citation="You, Liu, Wang, Long. LogME: Practical Assessment of Pre-trained Models for Transfer "
            "Learning. ICML 2021.",
        ),
        EstimatorInfo(
            name="h_score",
            fn=h_score,
            needs_source_probs=False,
            description="Between-class over total feature covariance, tr(cov(f)^-1 cov(E[f|y])), Ledoit-Wolf "
            "shrunk.",
            citation="Bao et al. An Information-Theoretic Approach to Transferability in Task Transfer Learning. "
            "ICIP 2019; Ibrahim, Ponomareva, Mazumder. Newer is not always better. ECML-PKDD 2022.",
        ),
        EstimatorInfo(
            name="nce",
            fn=nce,
            needs_source_probs=True,
            description="Negative conditional entropy of target labels given the source model's argmax label.",
            citation="Tran, Nguyen, Hassner. Transferability and Hardness of Supervised Classification Tasks. "
            "ICCV 2019.",
        ),
        EstimatorInfo(
            name="leep",
            fn=leep,
            needs_source_probs=True,
            description="Log expected empirical prediction: source softmax mapped to target labels via P(y|z).",
            citation="Nguyen, Hassner, Seeger, Archambeau. LEEP: A New Measure to Evaluate Transferability of "
            "Learned Representations. ICML 2020.",
        ),
    )
}
