"""Ground-truth backends: implementations of `ground_truth.primitive.InterventionBackend`."""
