"""The model as a graph: plan (wiring, shapes, masks, memory) before anything is allocated,
weights, build, the forward pass and backprop, the context of a pass and its random streams."""
