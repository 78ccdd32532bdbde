"""A synthetic platform in the input contract (`pinsights generate`): for demos, tests, benchmarks."""
