"""The Robust Video Matting network, its weights, the inference engine, conversion and export."""
