"""InpaintAff: self-supervised instance separation from inpainting networks."""

from inpaintaff.utils.resolvers import register_resolvers

__version__ = "0.1.0"

register_resolvers()
