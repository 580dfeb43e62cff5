"""Models: generators and adapters that put audio for each prompt on disk."""

from bench.models.base import Model, ModelUnavailable

__all__ = ["Model", "ModelUnavailable"]
