"""Graph data: bundled datasets, generators, loaders for on-disk layouts, and the dataset spec."""
