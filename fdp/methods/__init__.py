"""Methods a fold job can run (fdp.methods.registry): the FDP network and its variants
(`network`), and methods that are not this network. Importing this package registers them all."""

# each module registers its method; the registry lists them in this order
from fdp.methods import network, single_frame, ststnet, off_apexnet, lbp_top  # noqa: F401
from fdp.methods.registry import METHODS, Method, get_method, list_methods, register

__all__ = ["METHODS", "Method", "get_method", "list_methods", "register"]
