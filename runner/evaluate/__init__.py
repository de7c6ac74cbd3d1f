"""task=evaluate: score a model and its weights on data with targets."""
