"""Task-trained vs data-trained comparison pipeline."""
