"""Linear baselines of the synthetic benchmark (SPEC §4.4), now in the library (`fdp.baselines`):
shared by the honesty check of test_synth and the learning check of test_learning."""

from fdp.baselines import frame_features, loso_predictions  # noqa: F401
