"""The RVM network, one module per part: encoders, LR-ASPP, recurrent decoder, refiners."""

from .network import MattingNetwork

__all__ = ["MattingNetwork"]
