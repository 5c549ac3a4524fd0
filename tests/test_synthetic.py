"""The embedded synthetic data: deterministic, exact labels, hard for connected components."""

from __future__ import annotations

import numpy as np
from scipy import ndimage as ndi

from inpaintaff.data.synthetic import synthetic_frame


def test_deterministic_and_typed():
    raw1, lab1 = synthetic_frame((128, 160), seed=3)
    raw2, lab2 = synthetic_frame((128, 160), seed=3)
    raw3, _ = synthetic_frame((128, 160), seed=4)
    np.testing.assert_array_equal(raw1, raw2)
    np.testing.assert_array_equal(lab1, lab2)
    assert not np.array_equal(raw1, raw3)
    assert raw1.dtype == np.uint16 and raw1.shape == (128, 160) and lab1.shape == (128, 160)


def test_labels_consecutive_and_nuclei_brighter():
    raw, labels = synthetic_frame((256, 256), seed=1)
    ids = np.unique(labels)
    np.testing.assert_array_equal(ids, np.arange(labels.max() + 1))
    assert labels.max() >= 40
    assert raw[labels > 0].mean() > raw[labels == 0].mean() + 3 * raw[labels == 0].std()


def test_hard_for_connected_components_on_true_foreground():
    # Dense clusters of touching nuclei: CC on the true foreground merges most of them.
    for seed in range(3):
        _, labels = synthetic_frame((256, 256), seed=seed)
        _, n_cc = ndi.label(labels > 0)
        assert n_cc < 0.5 * labels.max(), (seed, n_cc, labels.max())


def test_nuclei_differ_in_brightness():
    raw, labels = synthetic_frame((256, 256), seed=2)
    means = ndi.mean(raw.astype(float), labels, index=np.arange(1, labels.max() + 1))
    assert np.std(means) > 0.1 * np.mean(means - 100)
