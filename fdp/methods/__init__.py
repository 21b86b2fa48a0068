"""Methods a fold job can run (fdp.methods.registry): the FDP network and its variants
(`network`), and methods that are not this network. Importing this package registers them all."""

from fdp.methods import network, single_frame  # noqa: F401 - each module registers its method
from fdp.methods.registry import METHODS, Method, get_method, list_methods, register

__all__ = ["METHODS", "Method", "get_method", "list_methods", "register"]
