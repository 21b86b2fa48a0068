import pytest
import torch

from fdp.dynamic_image import arp_weights, dynamic_image, to_grey


def test_arp_weights_t8_match_bilen():
    expected = [-8.4607, -1.4607, 1.0393, 2.0393, 2.2893, 2.0893, 1.5893, 0.8750]
    assert arp_weights(8).tolist() == pytest.approx(expected, abs=1e-4)


@pytest.mark.parametrize("T", range(1, 21))
def test_arp_weights_sum_to_zero(T):
    assert float(arp_weights(T).sum()) == pytest.approx(0.0, abs=1e-9)


def test_arp_weights_closed_form():
    # alpha_t = 2(T - t + 1) - (T + 1)(H_T - H_{t-1})
    T = 11
    H = [0.0]
    for i in range(1, T + 1):
        H.append(H[-1] + 1 / i)
    closed = [2 * (T - t + 1) - (T + 1) * (H[T] - H[t - 1]) for t in range(1, T + 1)]
    assert arp_weights(T).tolist() == pytest.approx(closed, abs=1e-12)


def test_static_clip_gives_zero_image():
    frame = torch.rand(1, 1, 3, 16, 16)
    clip = frame.expand(2, 8, 3, 16, 16)
    assert torch.allclose(dynamic_image(clip, rescale=False), torch.zeros(2, 1, 16, 16), atol=1e-5)
    di = dynamic_image(clip)
    assert not torch.isnan(di).any() and torch.count_nonzero(di) == 0


def test_two_frames_is_half_difference():
    clip = torch.rand(3, 2, 3, 8, 8)
    expected = 0.5 * (to_grey(clip[:, 1]) - to_grey(clip[:, 0]))
    assert torch.allclose(dynamic_image(clip, rescale=False), expected, atol=1e-6)


def test_rescaled_to_unit_range_per_clip():
    clip = torch.rand(4, 8, 3, 16, 16)
    di = dynamic_image(clip)
    assert di.shape == (4, 1, 16, 16)
    flat = di.flatten(1)
    assert torch.allclose(flat.min(1).values, torch.zeros(4)) and torch.allclose(flat.max(1).values, torch.ones(4))


def test_ordering_changes_image():
    clip = torch.rand(1, 8, 3, 8, 8)
    assert not torch.allclose(dynamic_image(clip, rescale=False), dynamic_image(clip.flip(1), rescale=False))
