"""Backgrounds and the compositor, as tensor operations on the engine's device."""
