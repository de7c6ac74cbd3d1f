"""The JSON Schema of a model file (model.schema.json), shipped in the wheel as runner.schema.

The same file is what the model files' ``$schema`` lines point at in a checkout.
"""
