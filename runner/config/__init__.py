"""Reading configs: the guard on every file Hydra loads, the schema, validation with config
paths, plugins, and the limits and folders a config must stay within."""
