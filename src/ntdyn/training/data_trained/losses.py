"""Training losses of the data models: Poisson likelihood, KL, roll-outs, connectome penalty.

Each loss is (model, batch, key, epoch, opts, aux) -> (total, terms (4,)), terms in the
order of `TRAIN_TERMS` (total, reconstruction, kl, connectome).
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

from ntdyn.models.data_trained import SAE_GENERATORS, LatentEvolution, SequentialAutoencoder
from ntdyn.training.data_trained.options import EvolutionOptions, SAEOptions

Array = jax.Array


def poisson_nll(log_rates: Array, counts: Array) -> Array:
    """exp(l) - y l per entry (nats, without the log y! constant)."""
    return jnp.exp(log_rates) - counts * log_rates


def sae_loss(model: SequentialAutoencoder, batch, key, epoch, opts: SAEOptions, aux):
    """Poisson NLL per entry (+ KL per entry for LFADS); coordinated dropout on held-in input."""
    y, u, _ = batch
    b, t, _ = y.shape
    n_in, p = opts.n_held_in, opts.coordinated_dropout
    k_cd, k_post = jax.random.split(key)
    keep = jax.random.bernoulli(k_cd, 1.0 - p, (b, t, n_in)).astype(y.dtype)
    x_in = y[..., :n_in] * keep / (1.0 - p)
    post_keys = jax.random.split(k_post, b) if model.variational else None
    out = jax.vmap(model)(x_in, u, post_keys) if model.variational else jax.vmap(model)(x_in, u)
    nll = poisson_nll(out.log_rates, y)
    # Coordinated dropout: held-in entries count only where the encoder did not see them.
    held_in_w = 1.0 - keep if p > 0 else jnp.ones_like(keep)
    w = jnp.concatenate([held_in_w, jnp.ones_like(nll[..., n_in:])], axis=-1)
    rec = jnp.sum(nll * w) / jnp.maximum(jnp.sum(w), 1.0)
    ramp = jnp.minimum(1.0, (epoch + 1) / max(opts.kl_ramp_epochs, 1))
    kl = jnp.mean(out.kl) / (t * y.shape[-1])
    con = jnp.zeros(())
    total = rec + opts.kl_weight * ramp * kl
    return total, jnp.stack([total, rec, kl, con])


def _one_step_rates(model: LatentEvolution, x: Array, u: Array) -> Array:
    """Neuron-to-neuron one-step map: held-in activity (N_in,) -> next rates (N,)."""
    return jnp.exp(model.log_rates(model.step(model.encode(x), u)))


def connectome_penalty(model: LatentEvolution, x: Array, u: Array, pairs: Array) -> Array:
    """Mean of (d rate_i(t+1) / d x_j(t))^2 over `pairs` (K, 2) at states x (b, N_in), u (b, I)."""

    def one(x_b, u_b, pair):
        i, j = pair[0], pair[1]
        e_j = jnp.zeros_like(x_b).at[j].set(1.0)
        _, col = jax.jvp(lambda v: _one_step_rates(model, v, u_b), (x_b,), (e_j,))
        return col[i] ** 2

    per_state = jax.vmap(lambda xb, ub: jax.vmap(lambda pr: one(xb, ub, pr))(pairs))(x, u)
    return jnp.mean(per_state)


def evolution_loss(model: LatentEvolution, batch, key, epoch, opts: EvolutionOptions, aux):
    """Reconstruction at t0 plus (after warm-up) roll-out losses at tau, 2 tau, ..., m tau."""
    y, u, s = batch
    mask, pairs = aux["mask"], aux["pairs"]
    b, t, _ = y.shape
    tau, m = opts.time_units, opts.evolve_multiple_steps
    horizon = tau * m
    k_t0, k_pairs = jax.random.split(key)
    if opts.aligned_starts:
        t0 = tau * jax.random.randint(k_t0, (b,), 0, (t - 1 - horizon) // tau + 1)
    else:
        t0 = jax.random.randint(k_t0, (b,), 0, t - horizon)
    k = jnp.arange(1, horizon + 1)
    on_multiple = (k % tau == 0).astype(y.dtype)
    step_w = jnp.ones_like(on_multiple) if opts.intermediate_loss_steps else on_multiple

    def one(y_b, u_b, s_b, t0_b):
        z0 = model.encode(s_b[t0_b])
        rec = poisson_nll(model.log_rates(z0), y_b[t0_b])
        u_win = jax.lax.dynamic_slice_in_dim(u_b, t0_b, horizon)
        y_win = jax.lax.dynamic_slice_in_dim(y_b, t0_b + 1, horizon)
        m_win = jax.lax.dynamic_slice_in_dim(mask, t0_b + 1, horizon)
        zs = model.rollout(z0, u_win)
        nll = poisson_nll(jax.vmap(model.log_rates)(zs), y_win)
        w = m_win * step_w[:, None]
        return (jnp.sum(rec * mask[t0_b]), jnp.sum(mask[t0_b]), jnp.sum(nll * w), jnp.sum(w))

    rec_sum, rec_n, evo_sum, evo_n = jax.vmap(one)(y, u, s, t0)
    rec = rec_sum.sum() / jnp.maximum(rec_n.sum(), 1.0)
    evo = evo_sum.sum() / jnp.maximum(evo_n.sum(), 1.0)
    warm = (epoch >= opts.warmup_epochs).astype(y.dtype)
    con = jnp.zeros(())
    if opts.connectome:
        idx = jax.random.randint(k_pairs, (opts.num_neurons,), 0, pairs.shape[0])
        states = jax.vmap(lambda s_b, t0_b: s_b[t0_b])(s, t0)
        inputs = jax.vmap(lambda u_b, t0_b: u_b[t0_b])(u, t0)
        n_states = min(b, 8)  # a few states per step keep the Jacobian samples cheap
        con = connectome_penalty(model, states[:n_states], inputs[:n_states], pairs[idx])
    total = rec + warm * evo + opts.loss_coeff * con
    return total, jnp.stack([total, rec + warm * evo, jnp.zeros(()), con])


LOSSES = {kind: sae_loss for kind in SAE_GENERATORS} | {"latent_evolution": evolution_loss}
