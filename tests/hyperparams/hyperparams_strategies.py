"""Hypothesis strategies shared by the hyperparams tests: nested hyperparameter dicts."""

from hypothesis import strategies as st

# Keys like "std" or "n_steps": never "__", never a leading or trailing "_".
keys = st.one_of(
    st.text(alphabet="abcdef", min_size=1, max_size=3),
    st.sampled_from(["n_steps", "p_active", "mult_noise_std"]),
)
scalars = st.one_of(
    st.integers(), st.floats(allow_nan=False), st.booleans(), st.text(max_size=4), st.none()
)
leaves = st.one_of(scalars, st.lists(scalars, max_size=3), st.builds(dict))
nested = st.dictionaries(
    keys,
    st.recursive(
        leaves,
        lambda inner: st.dictionaries(keys, inner, min_size=1, max_size=3),
        max_leaves=8,
    ),
    max_size=5,
)
