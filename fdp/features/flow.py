"""Optical flow between the onset and the apex, and the optical strain computed from it: the input
of STSTNet (u, v, strain) and of OFF-ApexNet (u, v) (docs/methods.md).

* **Flow**: TV-L1 (Zach, Pock & Bischof 2007; the dual formulation of Wedel et al. 2009), the
  flow both papers use, from OpenCV's contrib build (`cv2.optflow.DualTVL1OpticalFlow_create`),
  with every parameter written out in `TVL1Params` (OpenCV's defaults). It is computed on the grey
  (ITU-R BT.601 luma) onset and apex frames at the cache's resolution, in pixels of that
  resolution: u > 0 is motion to the right, v > 0 motion downwards.
* **Optical strain** (Shreve et al. 2011; as Liong et al. use it): the magnitude of the strain
  tensor of the flow field, eps = sqrt(e_xx^2 + e_yy^2 + 2 e_xy^2) with e_xx = du/dx, e_yy = dv/dy,
  e_xy = (du/dy + dv/dx) / 2; derivatives by central differences (one-sided at the border), in
  the cache's pixels. It is dimensionless, so it does not change with the resize below.
* **Resize** to `size` x `size` (28 for both networks) by area averaging; u and v are multiplied by
  size / S so that they stay displacements in pixels of the resized grid.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

import cv2
import numpy as np

from fdp.features.keyframes import key_frames

NET_INPUT_SIZE = 28  # STSTNet (Liong et al. 2019) and OFF-ApexNet (Gan et al. 2019) both take 28 x 28


@dataclass(frozen=True)
class TVL1Params:
    """OpenCV's DualTVL1OpticalFlow parameters; the defaults are OpenCV's own (4.x)."""

    tau: float = 0.25  # time step of the numerical scheme
    lambda_: float = 0.15  # weight of the data term (smaller: smoother flow)
    theta: float = 0.3  # coupling of the two variables of the dual scheme
    nscales: int = 5  # pyramid levels
    warps: int = 5  # warpings per level
    epsilon: float = 0.01  # stopping threshold of the inner iterations
    inner_iterations: int = 30
    outer_iterations: int = 10
    scale_step: float = 0.8  # pyramid downscale factor between levels
    gamma: float = 0.0  # weight of the illumination term (0: off)
    median_filtering: int = 5  # median filter kernel applied to the flow after each warp
    use_initial_flow: bool = False

    def create(self):
        return cv2.optflow.DualTVL1OpticalFlow_create(
            tau=self.tau, lambda_=self.lambda_, theta=self.theta, nscales=self.nscales, warps=self.warps,
            epsilon=self.epsilon, innnerIterations=self.inner_iterations, outerIterations=self.outer_iterations,
            scaleStep=self.scale_step, gamma=self.gamma, medianFiltering=self.median_filtering,
            useInitialFlow=self.use_initial_flow)


@dataclass(frozen=True)
class FlowFeatureParams:
    """Everything that changes the stored flow features (part of their cache key)."""

    tvl1: TVL1Params = TVL1Params()
    size: int = NET_INPUT_SIZE  # side of the stored u, v, strain maps
    grey: str = "bt601"  # how RGB frames become grey (cv2.COLOR_RGB2GRAY)
    strain: str = "central-differences"  # derivatives of the strain tensor (np.gradient)

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


def grey(frame: np.ndarray) -> np.ndarray:
    """(3, S, S) uint8 RGB frame of the clip cache -> (S, S) uint8 grey."""
    return cv2.cvtColor(np.ascontiguousarray(frame.transpose(1, 2, 0)), cv2.COLOR_RGB2GRAY)


def tvl1_flow(first: np.ndarray, second: np.ndarray, params: TVL1Params = TVL1Params()) -> np.ndarray:
    """(H, W, 2) float32 TV-L1 flow (u, v) from grey `first` to grey `second`, both (H, W) uint8:
    second(x + u, y + v) ~ first(x, y)."""
    return params.create().calc(first, second, None)


def optical_strain(u: np.ndarray, v: np.ndarray) -> np.ndarray:
    """(H, W) strain magnitude of the flow (u, v), each (H, W): sqrt(e_xx^2 + e_yy^2 + 2 e_xy^2)."""
    du_dy, du_dx = np.gradient(u.astype(np.float64))  # axis 0 is y (rows), axis 1 is x (columns)
    dv_dy, dv_dx = np.gradient(v.astype(np.float64))
    e_xy = 0.5 * (du_dy + dv_dx)
    return np.sqrt(du_dx ** 2 + dv_dy ** 2 + 2.0 * e_xy ** 2)


def resize_map(a: np.ndarray, size: int) -> np.ndarray:
    """(H, W) -> (size, size) by area averaging (bilinear when enlarging)."""
    interp = cv2.INTER_AREA if size <= a.shape[0] else cv2.INTER_LINEAR
    return cv2.resize(a.astype(np.float32), (size, size), interpolation=interp)


def flow_strain(onset: np.ndarray, apex: np.ndarray, params: FlowFeatureParams = FlowFeatureParams()) -> np.ndarray:
    """(3, size, size) float32 (u, v, strain) from onset to apex, each (3, S, S) uint8 RGB."""
    flow = tvl1_flow(grey(onset), grey(apex), params.tvl1)
    u, v = flow[..., 0], flow[..., 1]
    strain = optical_strain(u, v)
    scale = params.size / onset.shape[-1]  # displacements in pixels of the resized grid
    return np.stack([resize_map(u, params.size) * scale, resize_map(v, params.size) * scale,
                     resize_map(strain, params.size)]).astype(np.float32)


def clip_flow_features(cache, i: int, params: FlowFeatureParams = FlowFeatureParams()) -> tuple[np.ndarray, str]:
    """(u, v, strain) of clip i of a `ClipCache` between its onset and apex, and the apex rule used."""
    frames = cache.clip_frames(i)
    kf = key_frames(cache.clips[i])
    return flow_strain(np.asarray(frames[kf.onset]), np.asarray(frames[kf.apex]), params), kf.apex_rule
