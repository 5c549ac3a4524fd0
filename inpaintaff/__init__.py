"""InpaintAff: self-supervised instance separation from inpainting networks.

``from inpaintaff import Segmenter`` gives the Python API (imported on first use, so that the
package itself stays light).
"""

from inpaintaff.utils.resolvers import register_resolvers

__version__ = "0.1.0"
__all__ = ["Segmenter"]

register_resolvers()


def __getattr__(name: str):
    if name == "Segmenter":
        from inpaintaff.api import Segmenter

        return Segmenter
    raise AttributeError(f"module 'inpaintaff' has no attribute {name!r}")
