"""training_dynamics: record an MLP's training, analyse the trace, draw and record figures.

Namespace `training_dynamics`: parameters `params:training_dynamics.*`, datasets
`training_dynamics.<name>` (catalog.yml); each analysis is its own node.
"""

from kedro.pipeline import Pipeline, node

from ntdyn.pipelines.training_dynamics import nodes as n

ANALYSES = [
    node(n.pca, ["trace_weights", "params:analyses.pca"], ["pca_scores", "pca_variance"],
         name="pca"),
    node(n.psd, ["pca_scores", "params:analyses.psd"], "psd_spectra", name="psd"),
    node(n.tsne, ["trace_weights", "trace_activations", "params:analyses.tsne"], "tsne_units",
         name="tsne"),
    node(n.correlation, ["trace_weights", "trace_activations", "params:analyses.correlation"],
         "correlation_pairs", name="correlation"),
    node(n.ccm, ["trace_scalars", "params:analyses.ccm"], "ccm_skill", name="ccm"),
    node(n.ar, ["trace_scalars", "params:analyses.ar"], "ar_forecast", name="ar"),
    node(n.states, ["pca_scores", "params:analyses.states"], ["states_steps", "states_map"],
         name="states"),
]  # fmt: skip


def _record_node(kind: str):
    def record(figures, evaluation, store):
        return n.record_figures(kind, figures, evaluation, store)

    record.__name__ = f"record_{kind}_figures"
    return node(record, [f"{kind}_figures", "analyses_record", "model_store"],
                f"{kind}_figure_records", name=f"record_{kind}_figures")  # fmt: skip


def create_pipeline() -> Pipeline:
    nodes = [
        node(
            n.record_training,
            ["params:hyperparams", "model_store", "params:training_options"],
            ["trace_scalars", "trace_layers", "trace_weights", "trace_activations",
             "trace_record"],
            name="record_training",
        ),
        *ANALYSES,
        node(
            n.record_analyses,
            ["trace_record", "pca_variance", "ccm_skill", "ar_forecast", "states_steps",
             "correlation_pairs", "params:analyses", "model_store"],
            "analyses_record",
            name="record_analyses",
        ),
        node(
            n.draw_figures,
            ["trace_scalars", "pca_scores", "pca_variance", "psd_spectra", "tsne_units",
             "correlation_pairs", "ccm_skill", "ar_forecast", "states_steps", "states_map"],
            [f"{kind}_figures" for kind in n.FIGURE_KINDS],
            name="draw_figures",
        ),
        *[_record_node(kind) for kind in n.FIGURE_KINDS],
    ]  # fmt: skip
    return Pipeline(nodes, namespace="training_dynamics", inputs={"model_store"},
                    tags="training_dynamics")  # fmt: skip
