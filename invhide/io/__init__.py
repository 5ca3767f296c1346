"""Files: images in and out, atomic writes, safetensors model files and image folders as data.

This layer knows the math of :mod:`invhide.nn` (8-bit rounding) and nothing
above it: :mod:`invhide.io.checkpoint` rebuilds models through the model
classes that :mod:`invhide.models` registers, so files know no model class by
name.

- :mod:`invhide.io.files`: :func:`~invhide.io.files.atomic_write`, the one way invhide writes a file.
- :mod:`invhide.io.images`: defensive image reading, lossless 8-bit writing.
- :mod:`invhide.io.checkpoint`: safetensors model files with their config, and the model classes they rebuild.
- :mod:`invhide.io.datasets`: folders of photographs as training crops and as evaluation pairs.
- :mod:`invhide.io.keyfiles`: key files that only their owner can read, never replaced.
- :mod:`invhide.io.progress`: progress bars on a terminal, plain lines in a log.
"""

from invhide.io import checkpoint, datasets, files, images, keyfiles, progress
from invhide.io.files import atomic_write
from invhide.io.images import read_image, write_image

__all__ = [
    "atomic_write",
    "checkpoint",
    "datasets",
    "files",
    "images",
    "keyfiles",
    "progress",
    "read_image",
    "write_image",
]
