"""Data-trained latent dynamics models, fitted to spikes (docs/science.md §2.6).

Shapes, per trial: T time bins, N_in held-in neurons (the encoder's input),
N = N_in + N_out neurons (held-out ones are predicted, never read), I task
inputs, G generator (latent) units. Every model returns log-rates per bin so
the Poisson likelihood is exp(l) - y l (up to log y!).

- `SequentialAutoencoder`: a bidirectional GRU encoder reads the held-in spikes
  and gives the generator's initial state; a generator driven by the task
  inputs runs forward; rates = exp(readout(factors(g_t))). The generator is a
  GRU (SAE-GRU, LFADS), a vanilla tanh RNN (SAE-RNN), a linear dynamical system
  (SAE-LDS) or a neural ODE (SAE-NODE), `ntdyn.models.generators`. With
  `variational` the initial state is sampled (LFADS, KL to N(0, I)); with
  `n_inferred_inputs` > 0 a controller GRU infers inputs u_t from the encoder's
  per-bin features (LFADS's controller, KL to N(0, I) per bin). The SAEs are neither.
- `LatentEvolution`: encoder MLP x_t -> z_t; evolver z_{t+1} = z_t + MLP([z_t, u_t])
  (tanh, last layer zero so training starts at the identity map); decoder
  z -> log-rates.
"""

from __future__ import annotations

import equinox as eqx
import jax
import jax.numpy as jnp
from jaxtyping import Array, Float, PRNGKeyArray

from ntdyn.models.cells import scan_unroll
from ntdyn.models.generators import make_generator
from ntdyn.models.scans import scan_both_ways, scan_inputs, written_gradients
from ntdyn.models.stacking import stacked

# The sequential autoencoders' kinds and their generators (`ntdyn.models.generators`).
SAE_GENERATORS = {"sae_gru": "gru", "lfads": "gru", "sae_rnn": "rnn", "sae_lds": "lds",
                  "sae_node": "node"}  # fmt: skip
DATA_MODEL_KINDS = (*SAE_GENERATORS, "latent_evolution")


class SAEOutput(eqx.Module):
    """log_rates (T, N); factors (T, F); latents = generator states (T, G); kl: scalar (nats);
    inferred_inputs (T, U): the controller's inputs u_t fed to the generator (their posterior
    means when no key is given; U = 0 without a controller)."""

    log_rates: Float[Array, "T N"]
    factors: Float[Array, "T F"]
    latents: Float[Array, "T G"]
    kl: Float[Array, ""]
    inferred_inputs: Float[Array, "T U"]


def _gaussian_kl(mean: Array, logvar: Array) -> Array:
    """KL(N(mean, exp(logvar)) || N(0, 1)) summed over the last axis."""
    return 0.5 * jnp.sum(jnp.exp(logvar) + mean**2 - 1.0 - logvar, axis=-1)


def _scan_cell(cell: eqx.Module, xs: Array, h0: Array) -> Array:
    """The generator's states (T, G) driven by xs from h0: `ntdyn.models.scans` on
    accelerators (input share before the loop, the GRU's gradient written out), the plain
    scan on the CPU (`scans.written_gradients`); the same numbers."""
    if written_gradients():
        return scan_inputs(cell, xs, h0)

    def step(h, x):
        h = cell(x, h)
        return h, h

    return jax.lax.scan(step, h0, xs, unroll=scan_unroll())[1]


def _scan_both_ways(fwd: eqx.nn.GRUCell, bwd: eqx.nn.GRUCell, xs: Array) -> tuple[Array, Array]:
    """Forward states (T, E) and backward states (T, E, aligned to time) in one scan: the two
    directions are independent, so one loop of T steps serves both (half the sequential depth).
    On accelerators through `scans.scan_both_ways` (as `_scan_cell`)."""
    if written_gradients():
        return scan_both_ways(fwd, bwd, xs)

    def step(carry, x_pair):
        hf, hb = carry
        hf, hb = fwd(x_pair[0], hf), bwd(x_pair[1], hb)
        return (hf, hb), (hf, hb)

    h0 = (jnp.zeros(fwd.hidden_size), jnp.zeros(bwd.hidden_size))
    _, (f, b) = jax.lax.scan(step, h0, (xs, xs[::-1]), unroll=scan_unroll())
    return f, b[::-1]


class SequentialAutoencoder(eqx.Module):
    """SAE-GRU, -RNN, -LDS, -NODE and LFADS (see the module docstring).

    generator: `gru | rnn | lds | node`; node_width, node_depth, node_dt: the NODE's vector
    field MLP and Euler step (bins).
    """

    encoder_fwd: eqx.nn.GRUCell
    encoder_bwd: eqx.nn.GRUCell
    to_initial: eqx.nn.Linear  # encoder ends -> mean (and log-variance) of g_0
    controller: eqx.nn.GRUCell | None
    to_inferred: eqx.nn.Linear | None  # controller state -> mean, log-variance of u_t
    generator: eqx.Module  # h' = generator(u, h), `ntdyn.models.generators`
    to_factors: eqx.nn.Linear
    readout: eqx.nn.Linear
    variational: bool = eqx.field(static=True)
    n_inferred_inputs: int = eqx.field(static=True)
    generator_size: int = eqx.field(static=True)

    def __init__(
        self, n_held_in: int, n_neurons: int, n_inputs: int, *, encoder_size: int,
        generator_size: int, factor_size: int, variational: bool, n_inferred_inputs: int,
        controller_size: int, key: PRNGKeyArray, generator: str = "gru", node_width: int = 0,
        node_depth: int = 0, node_dt: float = 0.0,
    ):  # fmt: skip
        keys = jax.random.split(key, 8)
        self.encoder_fwd = eqx.nn.GRUCell(n_held_in, encoder_size, key=keys[0])
        self.encoder_bwd = eqx.nn.GRUCell(n_held_in, encoder_size, key=keys[1])
        n_ic = generator_size * (2 if variational else 1)
        self.to_initial = eqx.nn.Linear(2 * encoder_size, n_ic, key=keys[2])
        if n_inferred_inputs > 0:
            self.controller = eqx.nn.GRUCell(
                2 * encoder_size + factor_size, controller_size, key=keys[3]
            )
            self.to_inferred = eqx.nn.Linear(controller_size, 2 * n_inferred_inputs, key=keys[4])
        else:
            self.controller = self.to_inferred = None
        self.generator = make_generator(
            generator, n_inputs + n_inferred_inputs, generator_size, key=keys[5],
            width=node_width, depth=node_depth, dt=node_dt,
        )  # fmt: skip
        self.to_factors = eqx.nn.Linear(generator_size, factor_size, use_bias=False, key=keys[6])
        self.readout = eqx.nn.Linear(factor_size, n_neurons, key=keys[7])
        self.variational = variational
        self.n_inferred_inputs = n_inferred_inputs
        self.generator_size = generator_size

    def encode(self, spikes_in: Float[Array, "T N_in"]) -> tuple[Array, Array]:
        """Per-bin encoder features (T, 2E) and the initial-state parameters."""
        fwd, bwd = _scan_both_ways(self.encoder_fwd, self.encoder_bwd, spikes_in)
        ends = jnp.concatenate([fwd[-1], bwd[0]])
        return jnp.concatenate([fwd, bwd], axis=-1), self.to_initial(ends)

    def __call__(
        self, spikes_in: Float[Array, "T N_in"], inputs: Float[Array, "T I"],
        key: PRNGKeyArray | None = None,
    ) -> SAEOutput:  # fmt: skip
        """Infer rates from held-in spikes; `key` samples the posterior (None: its mean)."""
        features, ic = self.encode(spikes_in)
        g = self.generator_size
        k_ic, k_u = jax.random.split(key) if key is not None else (None, None)
        kl = jnp.zeros(())
        if self.variational:
            mean, logvar = ic[:g], ic[g:]
            kl = kl + _gaussian_kl(mean, logvar)
            ic = (
                mean
                if key is None
                else mean + jnp.exp(0.5 * logvar) * jax.random.normal(k_ic, (g,))
            )
        if self.controller is None:
            latents = _scan_cell(self.generator, inputs, ic)
            return SAEOutput(self._log_rates(latents), jax.vmap(self.to_factors)(latents),
                             latents, kl, jnp.zeros((inputs.shape[0], 0)))  # fmt: skip
        n_u = self.n_inferred_inputs
        noise = (
            jnp.zeros((inputs.shape[0], n_u)) if key is None
            else jax.random.normal(k_u, (inputs.shape[0], n_u))
        )  # fmt: skip

        def step(carry, xs):
            h, c, f = carry
            feat, u_task, eps = xs
            c = self.controller(jnp.concatenate([feat, f]), c)
            stats = self.to_inferred(c)
            mean, logvar = stats[:n_u], stats[n_u:]
            u = mean + jnp.exp(0.5 * logvar) * eps
            h = self.generator(jnp.concatenate([u_task, u]), h)
            f = self.to_factors(h)
            return (h, c, f), (h, _gaussian_kl(mean, logvar), u)

        c0 = jnp.zeros(self.controller.hidden_size)
        f0 = self.to_factors(ic)
        _, (latents, kls, inferred) = jax.lax.scan(
            step, (ic, c0, f0), (features, inputs, noise), unroll=scan_unroll()
        )
        return SAEOutput(self._log_rates(latents), jax.vmap(self.to_factors)(latents), latents,
                         kl + kls.sum(), inferred)  # fmt: skip

    def _log_rates(self, latents: Array) -> Array:
        return jax.vmap(lambda h: self.readout(self.to_factors(h)))(latents)

    def step(self, h: Float[Array, " G"], u: Float[Array, " I"]) -> Float[Array, " G"]:
        """One generator step with task input u and no inferred input (fixed points, roll-outs)."""
        return self.generator(jnp.concatenate([u, jnp.zeros(self.n_inferred_inputs)]), h)


class LatentEvolution(eqx.Module):
    """x_t -> z_t = enc(x_t); z_{t+1} = z_t + evolve([z_t, u_t]); log-rates = dec(z)."""

    encoder: eqx.nn.MLP
    evolver: eqx.nn.MLP
    decoder: eqx.nn.Linear
    latent_size: int = eqx.field(static=True)

    def __init__(
        self, n_held_in: int, n_neurons: int, n_inputs: int, *, latent_size: int, width: int,
        depth: int, key: PRNGKeyArray,
    ):  # fmt: skip
        k_enc, k_evo, k_dec = jax.random.split(key, 3)
        self.encoder = eqx.nn.MLP(n_held_in, latent_size, width, depth, jax.nn.tanh, key=k_enc)
        evolver = eqx.nn.MLP(latent_size + n_inputs, latent_size, width, depth, jnp.tanh,
                             final_activation=jnp.tanh, key=k_evo)  # fmt: skip
        # Zero last layer: the evolver starts as the identity map, so early roll-outs don't blow up.
        last = evolver.layers[-1]
        evolver = eqx.tree_at(
            lambda m: (m.layers[-1].weight, m.layers[-1].bias),
            evolver, (jnp.zeros_like(last.weight), jnp.zeros_like(last.bias)),
        )  # fmt: skip
        self.evolver = evolver
        self.decoder = eqx.nn.Linear(latent_size, n_neurons, key=k_dec)
        self.latent_size = latent_size

    def encode(self, x: Float[Array, " N_in"]) -> Float[Array, " Z"]:
        return self.encoder(x)

    def step(self, z: Float[Array, " Z"], u: Float[Array, " I"]) -> Float[Array, " Z"]:
        return z + self.evolver(jnp.concatenate([z, u]))

    def log_rates(self, z: Float[Array, " Z"]) -> Float[Array, " N"]:
        return self.decoder(z)

    def rollout(self, z0: Float[Array, " Z"], inputs: Float[Array, "K I"]) -> Float[Array, "K Z"]:
        """States after 1..K steps driven by `inputs` (K, I)."""

        def step(z, u):
            z = self.step(z, u)
            return z, z

        return jax.lax.scan(step, z0, inputs, unroll=scan_unroll())[1]


def data_model_from_hyperparams(hp: dict, key: PRNGKeyArray) -> eqx.Module:
    """Untrained data model from flattened hyperparameters (`model__*`, `data__*`)."""
    kind = hp["model__kind"]
    n_in, n_out = int(hp["data__n_held_in"]), int(hp["data__n_held_out"])
    n_inputs = int(hp["data__n_inputs"])
    if kind in SAE_GENERATORS:
        lfads, generator = kind == "lfads", SAE_GENERATORS[kind]
        node = generator == "node"
        return SequentialAutoencoder(
            n_in, n_in + n_out, n_inputs, encoder_size=int(hp["model__encoder_size"]),
            generator_size=int(hp["model__latent_size"]), factor_size=int(hp["model__factor_size"]),
            variational=lfads,
            n_inferred_inputs=int(hp["model__n_inferred_inputs"]) if lfads else 0,
            controller_size=int(hp["model__controller_size"]) if lfads else 0, key=key,
            generator=generator, node_width=int(hp["model__width"]) if node else 0,
            node_depth=int(hp["model__depth"]) if node else 0,
            node_dt=float(hp["model__dt"]) if node else 0.0,
        )  # fmt: skip
    if kind == "latent_evolution":
        return LatentEvolution(
            n_in, n_in + n_out, n_inputs, latent_size=int(hp["model__latent_size"]),
            width=int(hp["model__width"]), depth=int(hp["model__depth"]), key=key,
        )  # fmt: skip
    raise ValueError(f"model__kind = {kind!r}: must be one of {list(DATA_MODEL_KINDS)}")


def data_models_from_hyperparams(hp: dict, keys: PRNGKeyArray) -> eqx.Module:
    """Replicates stacked along a leading axis, one per key (R, 2)."""
    return stacked(lambda k: data_model_from_hyperparams(hp, k), keys)
