"""gfr: face gender recognition by transfer learning, a reproducible CelebA study."""

__version__ = "0.1.0"
