"""Audio embedders. Each backend is a small :class:`~bench.embedders.base.Embedder` subclass."""

from bench.embedders.base import Embedder, EmbedderUnavailable

__all__ = ["Embedder", "EmbedderUnavailable"]
