"""Training stage: plan the sweep, reuse recorded models, train the rest, record them."""
