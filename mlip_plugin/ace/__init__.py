"""Atomic Cluster Expansion basis, evaluation, design matrices and smoothness priors."""
