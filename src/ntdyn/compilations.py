"""Count XLA compilations (and their seconds) while a block of work runs.

JAX reports every backend compilation to `jax.monitoring`; this listens while active.
Used by the end-of-run summary and by the tests that check one compilation per shape.
"""

from __future__ import annotations

from jax import monitoring

COMPILE_EVENT = "/jax/core/compile/backend_compile_duration"


class CompilationCounter:
    """`with CompilationCounter() as c: ...` then `c.count`, `c.seconds`; or start()/stop()."""

    def __init__(self) -> None:
        self.count = 0
        self.seconds = 0.0
        self._active = False

    def _listen(self, event: str, duration: float, **kwargs) -> None:
        if event == COMPILE_EVENT:
            self.count += 1
            self.seconds += float(duration)

    def start(self) -> CompilationCounter:
        self.count, self.seconds = 0, 0.0
        if not self._active:
            monitoring.register_event_duration_secs_listener(self._listen)
            self._active = True
        return self

    def stop(self) -> None:
        if self._active:
            monitoring.unregister_event_duration_listener(self._listen)
            self._active = False

    def __enter__(self) -> CompilationCounter:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()
