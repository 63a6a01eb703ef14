"""Evaluation stage: perturbation experiments on trained models, behaviour measures, records."""
