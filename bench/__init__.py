"""Benchmarks of mattecam: ``python -m bench`` (see ``bench/__main__.py``)."""
