"""``layer-runner import-keras``: Keras models (0.3 to 3) in, a model YAML and one .npz out.

The flow, one module per step:

- ``budget``: the limits every read obeys (text size, array bytes), taken from the project's;
- ``text``: architecture JSON and YAML (a safe YAML loader: no Python objects);
- ``hdf5``: bounded h5py reads (shapes and dtypes checked before any array is read);
- ``archive``: Keras 3 ``.keras`` zips (members' declared sizes checked first);
- ``sources``: which file is what, and the Keras version that wrote it;
- ``model``: the neutral description of a Keras model (layers, calls, tensors);
- ``legacy``: Keras 0.3 Sequential / Graph configs -> the neutral description;
- ``topology``: Keras 1, 2 and 3 Sequential / functional configs -> the neutral description;
- ``weights``: the HDF5 weight layouts of each version -> arrays on the neutral layers;
- ``shapes``: per-sample shapes of the Keras layers we map (to choose and check our layers);
- ``activations``: activation names per Keras version -> ours (or a Lambda expression);
- ``mapping``: the neutral description -> our layer configs and weight keys;
- ``writer``: validates the result with the runner's own checks, then writes YAML + .npz;
- ``cli``: the command line.

Nothing read here can run code: no pickle, no eval, no import of a name a file gives; a
Lambda (Python bytecode) is refused with its path.
"""
