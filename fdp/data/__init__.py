"""Datasets: readers of the licensed ME datasets as distributed, class settings, face alignment,
the clip cache, the synthetic benchmark, and on-device clip sampling."""

from fdp.data.samples import DataError, Sample

__all__ = ["DataError", "Sample"]
