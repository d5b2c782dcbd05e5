"""Gradient-domain kernel force fields trained by preconditioned conjugate gradient."""
