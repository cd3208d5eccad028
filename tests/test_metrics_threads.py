"""Small dense math on the CPU runs in one thread, and the thread setting is restored."""

import pytest
import torch

from ssl_geom.metrics._threads import one_thread_on_cpu


def test_one_thread_inside_and_the_setting_restored_even_after_an_error() -> None:
    before = torch.get_num_threads()
    torch.set_num_threads(2)
    try:
        with one_thread_on_cpu(torch.zeros(3)):
            assert torch.get_num_threads() == 1
        assert torch.get_num_threads() == 2
        with pytest.raises(RuntimeError, match="inside"), one_thread_on_cpu(torch.zeros(3)):
            raise RuntimeError("inside")
        assert torch.get_num_threads() == 2
    finally:
        torch.set_num_threads(before)
