"""Experiment tracking: runs and sweeps logged to MLflow (``tracking=mlflow``)."""
