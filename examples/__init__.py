"""Worked example plugins: modules a config names under ``plugins:`` to add layers (and
Lambda functions) with the same ``@register`` mechanism the built-in layers use.

Run from the repository root (the directory holding ``examples/``), or install the package
that ships your own plugin and expose it through the ``runner.layers`` entry-point group.
"""
