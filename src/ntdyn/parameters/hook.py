"""The Kedro hook that refuses a run's unknown or malformed parameters before anything
runs: before the record store is created, before kedro-mlflow opens its run, before any
node or file is written."""

from __future__ import annotations

from kedro.framework.hooks import hook_impl

from ntdyn.parameters.check import validate_parameters


class ParameterHooks:
    """Checks the merged parameters (conf files, `--params`, runtime parameters) against
    `ntdyn.parameters.spec` once the context exists. `tryfirst`, and registered after the
    project's other hooks (pluggy calls the last registered first), so that it runs before
    the store is created (RunLifecycleHooks) and before kedro-mlflow's hooks."""

    @hook_impl(tryfirst=True)
    def after_context_created(self, context):
        validate_parameters(context.params)
