"""Arrays a config names: inline values, .npy/.npz/.csv files, seeded random data, datasets."""
