"""KD Atlas machinery: schema, catalog, bibliography, site generation, harness and CLI.

Implementations in ``implementations/`` never import this package.
"""
__version__ = "0.1.0"
