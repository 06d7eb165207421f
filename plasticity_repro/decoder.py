"""Linear time decoder (spec §5): ordinary least squares with intercept from the E rates to the
time point, fit on the training activations, R^2 on the test activations."""
from __future__ import annotations

import jax
import jax.numpy as jnp


@jax.custom_batching.sequential_vmap
def _lstsq(Z, y, rcond):
    """Minimum-norm least squares, one design matrix at a time even under vmap (a loop, not
    LAPACK's batched SVD). The batched kernel spreads its batch over XLA:CPU's intra-op thread
    pool and blocks a pool thread while it waits; with one host device per core every pool
    thread can end up blocked that way at once (a deadlock seen on 2 cores, 2 host devices)."""
    return jnp.linalg.lstsq(Z, y, rcond=rcond)[0]


def fit_ols(X, y, rcond: float = 1e-6):
    """OLS weights (intercept last) of y on X, minimum-norm least squares on centred, unit-variance
    columns: silent cells (constant columns) drop out, and the rank decision (singular values below
    rcond x the largest) is the same at float32 and float64 instead of depending on machine epsilon."""
    mx = jnp.mean(X, axis=0)
    sx = jnp.std(X, axis=0)
    ok = sx > 1e-12 * (1.0 + jnp.max(jnp.abs(mx)))
    scale = jnp.where(ok, sx, 1.0)
    Z = jnp.where(ok, (X - mx) / scale, 0.0)
    my = jnp.mean(y)
    b = _lstsq(Z, y - my, rcond)
    coef = jnp.where(ok, b / scale, 0.0)
    return jnp.concatenate([coef, jnp.atleast_1d(my - mx @ coef)])


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
