"""Training an MLP classifier while recording how it learns (docs/science.md §7).

Every `record_every` = k Adam steps the recorder keeps: the training loss and
accuracy (means over the k minibatches since the last record), the test loss
and accuracy (on a fixed random test subset of `train__test_samples` images,
all by default), the learning rate, the gradient norm of
the last minibatch (global and per layer), every weight and bias, the weight
density (share of |w| above a threshold) and every unit's activation on a fixed
probe batch (the first images of the test subset). The record is computed inside
the compiled program (a scan over records, each a scan over k steps), so recording
costs one forward pass of the test subset per record and one transfer per block of
records. Blocks run as the training core's chunks (`ntdyn.training.core.run_chunks`):
after each, its records are filed into the tables' preallocated arrays, which a checkpoint
keeps with the training state, so an interrupted run resumes with its trace so far.

The trace is returned as long tables (pandas), indexed by (step, layer, unit):
`scalars` (one row per record), `layers` (record x layer), `weights`
(record x layer x unit x input; input -1 is the bias) and `activations`
(record x layer x unit x probe).
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import NamedTuple

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import optax
import pandas as pd
from jaxtyping import Array, Int, Key, PyTree

from ntdyn.hyperparams.hashing import hyperparams_hash
from ntdyn.models.mlp import MLPClassifier, mlp_from_hyperparams
from ntdyn.tasks.digits import ClassificationData
from ntdyn.training import divergence
from ntdyn.training.checkpoint import CheckpointConfig
from ntdyn.training.core import Member, TrainingRun, chunk_size, optax_step, run_chunks
from ntdyn.training.divergence import DivergenceConfig, DivergenceState
from ntdyn.training.keys import STREAM_BATCHES, STREAM_INIT, KeyStreams

SCHEDULES = ("constant", "cosine")


class BlockOptions(NamedTuple):
    """Everything static about the compiled training-and-recording block (hashable)."""

    k: int
    n_probe: int
    batch_size: int
    threshold: float
    record: bool
    learning_rate: float
    schedule: str
    n_steps: int


def learning_rate_schedule(hp: dict) -> optax.Schedule:
    """`train__learning_rate` constant, or cosine-decayed to 0 over `train__n_steps`."""
    return _schedule(float(hp["train__learning_rate"]), hp["train__schedule"],
                     int(hp["train__n_steps"]))  # fmt: skip


def _schedule(lr: float, kind: str, n_steps: int) -> optax.Schedule:
    if kind == "constant":
        return optax.constant_schedule(lr)
    if kind == "cosine":
        return optax.cosine_decay_schedule(lr, n_steps)
    raise ValueError(f"train__schedule = {kind!r}: must be one of {list(SCHEDULES)}")


def _optimizer(opts: BlockOptions) -> optax.GradientTransformation:
    return optax.adam(_schedule(opts.learning_rate, opts.schedule, opts.n_steps))


def check_recording_hyperparams(hp: dict) -> None:
    """Clear errors for bad options, before any compute."""
    for name in ("train__n_steps", "train__batch_size", "train__record_every",
                 "train__probe_size", "train__learning_rate"):  # fmt: skip
        if not float(hp[name]) > 0:
            raise ValueError(f"{name} = {hp[name]}: must be > 0")
    k, n = int(hp["train__record_every"]), int(hp["train__n_steps"])
    if n % k:
        raise ValueError(
            f"train__n_steps = {n}: must be a multiple of train__record_every = {k} "
            f"(every record covers k steps)"
        )
    if float(hp["train__density_threshold"]) < 0:
        raise ValueError(
            f"train__density_threshold = {hp['train__density_threshold']}: must be >= 0"
        )
    learning_rate_schedule(hp)


def cross_entropy(model: MLPClassifier, x: jax.Array, y: jax.Array) -> tuple[jax.Array, jax.Array]:
    """Mean softmax cross-entropy (nats) and accuracy over a batch x (B, D), y (B,)."""
    logits = jax.vmap(model)(x)
    loss = optax.softmax_cross_entropy_with_integer_labels(logits, y).mean()
    return loss, jnp.mean(jnp.argmax(logits, -1) == y)


def _loss_terms(model: MLPClassifier, x: jax.Array, y: jax.Array):
    """(loss, (loss, accuracy)): `cross_entropy` as the training core's step takes it."""
    loss, acc = cross_entropy(model, x, y)
    return loss, (loss, acc)


def _layer_norms(tree_layers) -> jax.Array:
    """Per-layer Euclidean norm of weights and bias together, (L,)."""
    return jnp.stack([optax.tree.norm((l.weight, l.bias)) for l in tree_layers])


@dataclass
class TrainingTrace:
    """A trained MLP and the long tables of its training (see the module docstring)."""

    hyperparams: dict
    hash: str
    model: MLPClassifier
    scalars: pd.DataFrame
    layers: pd.DataFrame
    weights: pd.DataFrame
    activations: pd.DataFrame
    probe_labels: np.ndarray


@functools.partial(jax.jit, static_argnames=("static", "opts"))
def record_block(
    params: PyTree, opt_state: PyTree, div: DivergenceState, data: tuple, test: tuple,
    key: Key[Array, ""], first_steps: Int[Array, " records"], static, opts: BlockOptions,
):  # fmt: skip
    """len(first_steps) records, each `opts.k` Adam steps then (if `opts.record`) a record.

    `static` is the model's non-array part (hashable); div: the model's divergence state
    with a model axis of 1 (`ntdyn.training.divergence`, checked at every step). One
    compiled program per block shape, reused across blocks and calls. Returns
    ((params, opt state, divergence state), records).
    """
    optimizer = _optimizer(opts)
    schedule = _schedule(opts.learning_rate, opts.schedule, opts.n_steps)
    k, batch_size, threshold, record = opts.k, opts.batch_size, opts.threshold, opts.record

    def train_steps(params, opt_state, dv, data, key, first_step):
        def step(carry, s):
            p, o, dv = carry
            idx = jax.random.randint(jax.random.fold_in(key, s), (batch_size,), 0, data[0].shape[0])
            p, o, dv, (loss, acc), grads = optax_step(p, static, o, dv, s, _loss_terms,
                                                      data[0][idx], data[1][idx],
                                                      optimizer=optimizer)  # fmt: skip
            return (p, o, dv), (loss, acc, grads)

        # k - 1 steps in the scan, the last outside it: only its gradient is kept, and
        # stacking k gradients in the scan's output would cost k copies of the parameters
        def step_without_grads(carry, s):
            carry, (loss, acc, _) = step(carry, s)
            return carry, (loss, acc)

        carry, (loss, acc) = jax.lax.scan(
            step_without_grads, (params, opt_state, dv), first_step + jnp.arange(k - 1)
        )
        carry, (last_loss, last_acc, last_grads) = step(carry, first_step + k - 1)
        loss = jnp.append(loss, last_loss)
        acc = jnp.append(acc, last_acc)
        return *carry, loss, acc, last_grads

    def one_record(carry, first_step, data, test, key):
        params, opt_state, dv = carry
        params, opt_state, dv, loss, acc, grads = train_steps(params, opt_state, dv, data, key,
                                                              first_step)  # fmt: skip
        if not record:
            return (params, opt_state, dv), {"train_loss": loss.mean()}
        model = eqx.combine(params, static)
        # one forward pass of the test subset gives the test metrics and the probe activity
        acts = jax.vmap(model.layer_activity)(test[0])
        test_loss = optax.softmax_cross_entropy_with_integer_labels(acts[-1], test[1]).mean()
        test_acc = jnp.mean(jnp.argmax(acts[-1], -1) == test[1])
        layer_density = jnp.stack([jnp.mean(jnp.abs(l.weight) > threshold) for l in model.layers])
        n_w = jnp.asarray([l.weight.size for l in model.layers], jnp.float32)
        grad_layers = _layer_norms(grads.layers)
        out = {
            "train_loss": loss.mean(), "train_accuracy": acc.mean(), "test_loss": test_loss,
            "test_accuracy": test_acc, "learning_rate": schedule(first_step + k - 1),
            "grad_norm": optax.tree.norm(grad_layers),
            "weight_density": jnp.sum(layer_density * n_w) / jnp.sum(n_w),
            "layer_grad_norm": grad_layers, "layer_weight_norm": _layer_norms(model.layers),
            "layer_weight_density": layer_density,
            "weight": [l.weight for l in model.layers], "bias": [l.bias for l in model.layers],
            "activations": [a[: opts.n_probe] for a in acts],
        }  # fmt: skip
        return (params, opt_state, dv), out

    dv = jax.tree.map(lambda x: x[0], div)  # the one model's state, unstacked in the steps
    (params, opt_state, dv), out = jax.lax.scan(
        lambda c, s: one_record(c, s, data, test, key), (params, opt_state, dv), first_steps
    )
    return (params, opt_state, jax.tree.map(lambda x: x[None], dv)), out


class RecordState(eqx.Module):
    """What the next block and the trace depend on: the MLP's parameters and optimiser state,
    its divergence state (a model axis of 1) and the trace's arrays filled so far (host;
    `TraceTables.values`, empty without records)."""

    params: PyTree
    opt_state: PyTree
    divergence: DivergenceState
    trace: dict


def train_recorded(
    hp: dict,
    data: ClassificationData,
    *,
    record: bool = True,
    progress: bool = True,
    block_target: int = 50,
    checkpoint: CheckpointConfig | None = None,
) -> TrainingTrace:
    """Train one MLP (`model__*`, `train__*`) on `data`, recording every k steps.

    With `record=False` the same compiled loop runs without the records (the
    baseline of the recording-cost benchmark); the tables are then empty. Blocks of
    records run as the training core's chunks (`ntdyn.training.core.run_chunks`): progress,
    divergence checks (`train__divergence_factor`, `DivergenceError`) and, with
    `checkpoint` and records, checkpoints of the training state and the trace so far,
    resumed by the next identical call.
    """
    check_recording_hyperparams(hp)
    streams = KeyStreams(int(hp["train__seed"]))
    model = mlp_from_hyperparams(hp, data.n_features, data.n_classes,
                                 streams.stream(STREAM_INIT))  # fmt: skip
    params, static = eqx.partition(model, eqx.is_array)
    k, n_steps = int(hp["train__record_every"]), int(hp["train__n_steps"])
    n_probe = int(hp["train__probe_size"])
    opts = BlockOptions(k, n_probe, int(hp["train__batch_size"]),
                        float(hp["train__density_threshold"]), record,
                        float(hp["train__learning_rate"]), hp["train__schedule"],
                        n_steps)  # fmt: skip
    train = (jnp.asarray(data.x_train), jnp.asarray(data.y_train))
    # A fixed random test subset for the test metrics; the probe is its first images.
    n_test = min(int(hp.get("train__test_samples", len(data.y_test))), len(data.y_test))
    if n_probe > n_test:
        raise ValueError(
            f"train__probe_size = {n_probe}: must be <= the test images used, {n_test}"
        )
    test_idx = np.asarray(jax.random.permutation(streams.probe(), len(data.y_test)))[:n_test]
    test = (jnp.asarray(data.x_test[test_idx]), jnp.asarray(data.y_test[test_idx]))
    probe_idx = test_idx[:n_probe]
    key = streams.stream(STREAM_BATCHES)

    n_records = n_steps // k
    per_block = chunk_size(n_records, block_target)
    factor = DivergenceConfig(float(hp.get("train__divergence_factor", 1000.0)))
    member = Member(hyperparams_hash(hp), "MLP", 1, opts.learning_rate, factor)
    tables = TraceTables(model, n_records, k, n_probe) if record else None
    state = RecordState(params, _optimizer(opts).init(params),
                        divergence.initial_state(jnp.full(1, member.divergence.factor)),
                        tables.values if record else {})  # fmt: skip

    def advance(state: RecordState, first: int) -> tuple[RecordState, float]:
        start = first // k
        first_steps = jnp.arange(start, start + per_block) * k
        carry, out = record_block(state.params, state.opt_state, state.divergence, train, test,
                                  key, first_steps, static, opts)  # fmt: skip
        out = jax.device_get(out)
        if record:
            tables.use(state.trace)  # the restored arrays, after a resume
            tables.fill(start, out)
        return RecordState(*carry, state.trace), float(out["train_loss"][-1])

    run = TrainingRun(n_steps, progress=progress, checkpoint=checkpoint,
                      desc="MLP (recording)" if record else "MLP")  # fmt: skip
    state, _ = run_chunks(state, [member], run, per_block * k, advance, lambda s: s.divergence,
                          resumable=record, stacked=False)  # fmt: skip
    model = eqx.combine(state.params, static)
    if record:
        tables.use(state.trace)
    frames = tables.frames() if record else (pd.DataFrame(),) * 4
    return TrainingTrace(dict(hp), member.hash, model, *frames, data.y_test[probe_idx])


SCALARS = ("train_loss", "train_accuracy", "test_loss", "test_accuracy", "learning_rate",
           "grad_norm", "weight_density")  # fmt: skip
PER_RECORD = (*SCALARS, "layer_grad_norm", "layer_weight_norm", "layer_weight_density")


def layer_names(model: MLPClassifier) -> list[str]:
    n = len(model.layers)
    return [f"hidden_{i + 1}" if i < n - 1 else "output" for i in range(n)]


class TraceTables:
    """The long tables of one trace, allocated once and filled block by block.

    The index columns depend only on the shapes, so they are built up front; each block
    of records fills its rows of the value columns. Rows run layer by layer, then record,
    then unit, then input (weights; input -1 is the bias) or probe (activations).
    """

    def __init__(self, model: MLPClassifier, n_records: int, k: int, n_probe: int):
        self.names = layer_names(model)
        self.steps = ((np.arange(n_records) + 1) * k).astype(np.int32)
        shapes = [l.weight.shape for l in model.layers]  # (n_out, n_in) per layer
        self.weight_rows = [n_out * (n_in + 1) for n_out, n_in in shapes]
        self.activation_rows = [n_probe * n_out for n_out, _ in shapes]
        self.weights = self._index(self.weight_rows, [
            {"unit": np.repeat(np.arange(n_out), n_in + 1),
             "input": np.tile(np.append(np.arange(n_in), -1), n_out)} for n_out, n_in in shapes
        ])  # fmt: skip
        self.activations = self._index(self.activation_rows, [
            {"unit": np.tile(np.arange(n_out), n_probe),
             "probe": np.repeat(np.arange(n_probe), n_out)} for n_out, _ in shapes
        ])  # fmt: skip
        self.shapes, self.n_probe = shapes, n_probe
        n_layers = len(shapes)
        self.per_record = {c: np.zeros((n_records,) if c in SCALARS else (n_records, n_layers),
                                       np.float32) for c in PER_RECORD}  # fmt: skip

    @property
    def values(self) -> dict[str, np.ndarray]:
        """The arrays the records fill (what a checkpoint keeps of the trace)."""
        return {"weights": self.weights["value"], "activations": self.activations["value"],
                **self.per_record}  # fmt: skip

    def use(self, values: dict[str, np.ndarray]) -> None:
        """Fill these arrays from now on (`values` as returned by `values`, e.g. restored)."""
        self.weights["value"], self.activations["value"] = values["weights"], values["activations"]
        self.per_record = {c: values[c] for c in PER_RECORD}

    def _index(self, rows_per_record: list[int], per_layer: list[dict]) -> dict:
        r = len(self.steps)
        cols = {
            "step": np.concatenate([np.repeat(self.steps, m) for m in rows_per_record]),
            "layer": pd.Categorical.from_codes(
                np.repeat(np.arange(len(rows_per_record), dtype=np.int8),
                          [r * m for m in rows_per_record]), self.names),
        }  # fmt: skip
        for name in per_layer[0]:
            cols[name] = np.concatenate([np.tile(c[name].astype(np.int32), r) for c in per_layer])
        cols["value"] = np.zeros(r * sum(rows_per_record), np.float32)
        return cols

    def fill(self, start: int, out: dict) -> None:
        """File the records start, start + 1, ... of one block's host output."""
        r, n_rec = len(out["train_loss"]), len(self.steps)
        for c in PER_RECORD:
            self.per_record[c][start : start + r] = out[c]
        w_at = a_at = 0
        for layer, (n_out, n_in) in enumerate(self.shapes):
            m = self.weight_rows[layer]
            rows = self.weights["value"][w_at + start * m : w_at + (start + r) * m]
            rows = rows.reshape(r, n_out, n_in + 1)
            rows[..., :-1] = out["weight"][layer]
            rows[..., -1] = out["bias"][layer]
            m = self.activation_rows[layer]
            self.activations["value"][a_at + start * m : a_at + (start + r) * m] = out[
                "activations"
            ][layer].reshape(-1)
            w_at += n_rec * self.weight_rows[layer]
            a_at += n_rec * m

    def frames(self) -> tuple[pd.DataFrame, ...]:
        """(scalars, layers, weights, activations); the big two share the filled arrays."""
        trace = self.per_record
        steps, n_layers = self.steps.astype(np.int64), len(self.names)
        scalars = pd.DataFrame({"step": steps, **{c: trace[c].astype(float) for c in SCALARS}})
        layers = pd.DataFrame({
            "step": np.repeat(steps, n_layers), "layer": np.tile(self.names, len(steps)),
            "grad_norm": trace["layer_grad_norm"].ravel().astype(float),
            "weight_norm": trace["layer_weight_norm"].ravel().astype(float),
            "weight_density": trace["layer_weight_density"].ravel().astype(float),
        })  # fmt: skip
        # copy=False: no second copy of ~10^6 rows (pandas would otherwise consolidate)
        return (scalars, layers, pd.DataFrame(self.weights, copy=False),
                pd.DataFrame(self.activations, copy=False))  # fmt: skip


def _long(steps: np.ndarray, layer: int, names: list[str], values: np.ndarray,
          **index: np.ndarray) -> pd.DataFrame:  # fmt: skip
    """Long table of values (R records, M entries) of layer `names[layer]`, with per-entry index
    columns (M,) each. The layer is categorical over all `names` (cheap to build and concat)."""
    r, m = values.shape
    cols = {"step": np.repeat(steps.astype(np.int32), m),
            "layer": pd.Categorical.from_codes(np.full(r * m, layer, np.int8), names)}  # fmt: skip
    cols |= {k: np.tile(v.astype(np.int32), r) for k, v in index.items()}
    return pd.DataFrame(cols | {"value": values.ravel().astype(np.float32)})


def parameter_trajectory(weights: pd.DataFrame) -> tuple[np.ndarray, np.ndarray]:
    """(steps (S,), trajectory (S, P)): every weight and bias per record, a fixed column order."""
    table = weights.sort_values(["step", "layer", "unit", "input"])
    steps = np.sort(table["step"].unique())
    return steps, table["value"].to_numpy().reshape(len(steps), -1)


# ----------------------------------------------------------------------------- reaching controllers

PROBE_TRIALS = 16
DENSITY_THRESHOLD = 0.01  # |w| above this counts towards a controller's weight density


def _leaf_name(path) -> str:
    return ".".join(str(getattr(k, "name", getattr(k, "key", k))) for k in path)


def controller_trace(snapshots: list[tuple[int, object, np.ndarray]], static, hp: dict,
                     history: np.ndarray) -> dict[str, pd.DataFrame]:  # fmt: skip
    """Training trace of reaching controllers from weight snapshots taken every k steps.

    snapshots: (steps done, array leaves of the controllers stacked along R, gradient norm
    per leaf at the last of those steps (R, n_leaves)); history: (n_batches, R, n_terms)
    per-step loss terms. Returns long tables, as the MLP recorder's:

    - `scalars` (step, replicate): the loss terms averaged over the k steps (`total` is
      `train_loss`), `test_loss` (total cost on 16 fixed probe reaches, the model's own
      noise and the probe seed), `learning_rate`, `grad_norm` (last minibatch) and
      `weight_density` (share of weight-matrix entries with |w| > DENSITY_THRESHOLD);
    - `layers` (step, replicate, layer = leaf path): grad_norm, weight_norm, weight_density;
    - `weights` (step, replicate, layer, unit, input; -1 for biases);
    - `activations` (step, replicate, layer "hidden", unit, probe = probe reach, value =
      the unit's mean activity over the reach).
    """
    from ntdyn.analysis.rollout import simulate_ensemble
    from ntdyn.tasks.reaching import (
        COST_TERMS,
        cost_weights,
        pert_params,
        reach_cost,
        sample_training_trials,
    )

    steps = np.asarray([s for s, _, _ in snapshots])
    k = int(steps[0])
    n_rep = history.shape[1]
    means = history[: len(steps) * k].reshape(len(steps), k, n_rep, -1).mean(axis=1)

    leaves = jax.tree_util.tree_flatten_with_path(snapshots[0][1])[0]
    names = [_leaf_name(path) for path, _ in leaves]
    is_matrix = [leaf.ndim == 3 for _, leaf in leaves]  # (R, out, in); biases are (R, out)
    weights, layers, density = [], [], []
    for step, params, grad_norms in snapshots:
        above = n_entries = 0  # weight-matrix entries over the threshold, per replicate
        for code, leaf in enumerate(jax.tree.leaves(params)):
            a = np.asarray(leaf).reshape(n_rep, leaf.shape[1], -1)  # (R, out, in or 1)
            n_out, n_in = a.shape[1:]
            inputs = np.tile(np.arange(n_in) if is_matrix[code] else np.full(1, -1), n_out)
            table = _long(np.full(n_rep, step), code, names, a.reshape(n_rep, -1),
                          unit=np.repeat(np.arange(n_out), n_in), input=inputs)  # fmt: skip
            weights.append(table.assign(replicate=np.repeat(np.arange(n_rep), n_out * n_in)))
            flat = a.reshape(n_rep, -1)
            over = np.abs(flat) > DENSITY_THRESHOLD
            if is_matrix[code]:
                above, n_entries = above + over.sum(1), n_entries + flat.shape[1]
            layers.append(pd.DataFrame({
                "step": step, "replicate": np.arange(n_rep), "layer": names[code],
                "grad_norm": np.asarray(grad_norms)[:, code].astype(float),
                "weight_norm": np.sqrt((flat.astype(float) ** 2).sum(1)),
                "weight_density": over.mean(1),
            }))  # fmt: skip
        density.append(above / n_entries)  # whole network, as for the MLP
    layers = pd.concat(layers, ignore_index=True)

    streams = KeyStreams(int(hp["train__seed"]))
    probe = sample_training_trials(
        streams.probe(), pert_params(hp), batch_size=PROBE_TRIALS,
        n_steps=int(hp["task__n_steps"]), workspace=jnp.asarray(hp["task__workspace"], jnp.float32),
    )  # fmt: skip
    cost = jax.vmap(jax.vmap(reach_cost, (0, 0, 0, 0, 0, None)), (0, 0, 0, 0, None, None))
    activations, test_loss = [], []
    for step, params, _ in snapshots:
        model = eqx.combine(jax.tree.map(jnp.asarray, params), static)
        traj = simulate_ensemble(model, hp, probe, seed=int(hp["train__seed"])).arrays
        state = jnp.asarray(traj["state"])  # (R, probe, T, 4): position, velocity
        terms = cost(state[..., :2], state[..., 2:], jnp.asarray(traj["control"]),
                     jnp.asarray(traj["hidden"]), probe.goal, cost_weights(hp))  # fmt: skip
        test_loss.append(np.asarray(terms["total"]).mean(1))  # (R,)
        act = traj["hidden"].mean(axis=2)  # (R, probe, H)
        n_probe, n_units = act.shape[1:]
        table = _long(np.full(n_rep, step), 0, ["hidden"], act.reshape(n_rep, -1),
                      unit=np.tile(np.arange(n_units), n_probe),
                      probe=np.repeat(np.arange(n_probe), n_units))  # fmt: skip
        activations.append(table.assign(replicate=np.repeat(np.arange(n_rep), n_probe * n_units)))

    grad = np.stack([np.sqrt((np.asarray(g, float) ** 2).sum(1)) for _, _, g in snapshots])
    scalars = pd.DataFrame({
        "step": np.repeat(steps, n_rep), "replicate": np.tile(np.arange(n_rep), len(steps)),
        **{t: means[..., i].ravel().astype(float) for i, t in enumerate(COST_TERMS)},
        "train_loss": means[..., COST_TERMS.index("total")].ravel().astype(float),
        "test_loss": np.concatenate(test_loss).astype(float),
        "learning_rate": float(hp["train__learning_rate"]),
        "grad_norm": grad.ravel(),
        "weight_density": np.concatenate(density).astype(float),
    })  # fmt: skip
    return {"scalars": scalars, "layers": layers,
            "weights": pd.concat(weights, ignore_index=True),
            "activations": pd.concat(activations, ignore_index=True)}  # fmt: skip
