# TEMPORARY stand-in until h_diam merges (not committed)
from dataclasses import dataclass
import numpy as np
from scipy import ndimage as ndi

@dataclass(frozen=True)
class DiameterEstimate:
    diameter: float | None
    n_objects: int
    uncertain: bool

def object_diameters(labels):
    ids, c = np.unique(labels[labels > 0], return_counts=True)
    return 2 * np.sqrt(c / np.pi)

def median_diameter(labels):
    d = object_diameters(labels)
    return float(np.median(d)) if d.size else None

def estimate_diameter(fg, min_objects=5):
    lab, n = ndi.label(fg)
    d = object_diameters(lab)
    d = d[d > 4]
    if d.size == 0:
        return DiameterEstimate(None, 0, True)
    return DiameterEstimate(float(np.median(d)), int(d.size), d.size < min_objects)

def intensity_foreground(image):
    im = ndi.gaussian_filter(image, 1)
    hist, edges = np.histogram(im, 256)
    c = (edges[:-1] + edges[1:]) / 2
    w0 = np.cumsum(hist); w1 = w0[-1] - w0
    m0 = np.cumsum(hist * c) / np.maximum(w0, 1); m1 = (np.sum(hist * c) - np.cumsum(hist * c)) / np.maximum(w1, 1)
    t = c[np.argmax(w0 * w1 * (m0 - m1) ** 2)]
    return im > t
