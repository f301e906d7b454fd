"""Model, waiting-list and system benchmarks. Benchmarks are not tests."""
