"""ntdyn: train, perturb and analyse recurrent networks; every record in MLflow.

The science library (`ntdyn.tasks`, `ntdyn.models`, `ntdyn.training`,
`ntdyn.analysis`) imports neither Kedro nor MLflow; pipelines import it.
"""

__version__ = "0.1.0"
