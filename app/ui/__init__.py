"""The PySide6 desktop window. The only package that imports Qt."""
