"""The engine-free steps: generate structures, collect reference data, fit, validate, report."""
