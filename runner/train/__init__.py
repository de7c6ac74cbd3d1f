"""task=fit: settings, data, losses, optimizers, the training loop and its history."""
