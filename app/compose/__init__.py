"""Backgrounds and the compositor, as tensor operations on the engine's device."""

from app.compose.backgrounds import BackgroundError, BackgroundLayer, make_background
from app.compose.compositor import Compositor

__all__ = ["BackgroundError", "BackgroundLayer", "Compositor", "make_background"]
