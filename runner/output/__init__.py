"""The run folder: atomic writes, result.json, summary, diagram, expectation checks."""
