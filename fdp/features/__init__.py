"""Hand-made inputs of the compared methods (docs/methods.md), computed once per clip of a prepared
clip cache and stored beside it (`store`):

* `flow` — TV-L1 optical flow (u, v) between the onset and the apex and its optical strain,
  28 x 28 (STSTNet, OFF-ApexNet);
* `lbp_top` — LBP-TOP histograms with the MEGC2019 baseline's parameters (LBP-TOP + linear SVM);
* `keyframes` — the onset / apex positions in a cached clip and the rule for an unknown apex.
"""
