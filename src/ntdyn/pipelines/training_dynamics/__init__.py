"""Training-dynamics pipeline."""
