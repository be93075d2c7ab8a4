"""Every paper's tests run on one torch thread.

Their models are tiny: one thread is fastest, and the default of one thread per core in each of
the suite's two xdist workers oversubscribes a 2-core machine (a Nasty Teacher toy measured 146 s
with the default threads under load, against a few seconds on one; the harness's tasks make the
same choice, see kdatlas.harness.get_task)."""
import pytest
import torch


@pytest.fixture(autouse=True)
def _one_torch_thread():
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)
