"""Property benchmarks on any ASE calculator."""
