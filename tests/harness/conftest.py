"""Harness tests run on one CPU thread: on a shared 2-core machine two OpenMP threads that spin-wait
for each other make small convolutions 10-50x slower (measured), and one thread is deterministic."""
import pytest
import torch


@pytest.fixture(autouse=True)
def _one_thread():
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)
