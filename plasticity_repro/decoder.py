"""Linear time decoder (spec §5): ordinary least squares with intercept from the E rates to the
time point, fit on the training activations, R^2 on the test activations."""
from __future__ import annotations

import jax.numpy as jnp


def fit_ols(X, y):
    """OLS weights (with intercept last) of y on X: minimum-norm least squares, so silent cells
    (constant columns) are harmless."""
    Xa = jnp.concatenate([X, jnp.ones((X.shape[0], 1), X.dtype)], axis=1)
    beta, *_ = jnp.linalg.lstsq(Xa, y)
    return beta


def predict(beta, X):
    return X @ beta[:-1] + beta[-1]


def r2_score(y, y_hat):
    """1 - SS_res / SS_tot, SS_tot around the mean of y."""
    ss_res = jnp.sum((y - y_hat) ** 2)
    ss_tot = jnp.sum((y - jnp.mean(y)) ** 2)
    return 1.0 - ss_res / ss_tot


def decoder_r2(fit_rates, fit_steps, test_rates, test_steps):
    """R^2 of time decoded from E rates.

    fit_rates: (n_acts, n_fit, n_e) at time points fit_steps (n_fit,), the same in every activation;
    test_rates: (n_acts', n_test, n_e) at test_steps. Time is in steps (R^2 does not care).
    """
    dtype = fit_rates.dtype
    X = fit_rates.reshape(-1, fit_rates.shape[-1])
    y = jnp.tile(fit_steps.astype(dtype), fit_rates.shape[0])
    beta = fit_ols(X, y)
    Xt = test_rates.reshape(-1, test_rates.shape[-1])
    yt = jnp.tile(test_steps.astype(dtype), test_rates.shape[0])
    return r2_score(yt, predict(beta, Xt))
