"""How often each compiled program of the data-trained models was traced.

Keys: "train_step", "infer_chunk", "nll_chunk", "rollout_chunk"; each is counted when JAX
traces it (a compilation), so tests can check that trials in chunks of one shape compile once.
"""

from __future__ import annotations

import collections

TRACE_COUNTS: collections.Counter[str] = collections.Counter()
