"""Metrics: pure functions on embeddings / probabilities plus thin pipeline wrappers."""
