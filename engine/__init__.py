"""rtdeblur's run-time engine: models, backends, frame pipeline, video I/O, metrics, CLI.

The core of this package imports neither torch nor Qt; see the project's design notes.
"""

__version__ = "0.1.0"
