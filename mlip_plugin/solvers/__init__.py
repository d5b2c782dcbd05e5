"""Linear least-squares solvers and solution paths (arrays in, arrays out)."""
