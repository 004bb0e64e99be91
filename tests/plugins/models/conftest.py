"""Fixtures for the model tests."""

import pytest
import torch


@pytest.fixture
def single_thread():
    """Train on one thread: small models step several times faster without intra-op threads."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)
