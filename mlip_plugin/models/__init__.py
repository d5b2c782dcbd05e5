"""Fitted models (linear ACE, kernel), one versioned file format with provenance."""
