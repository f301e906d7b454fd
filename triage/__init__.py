"""The decision: routing, running models, the priority policy, outputs, workers, the CLI."""
