"""Hydra callbacks (claiming run folders, the sweep summary) and the sweep report."""
