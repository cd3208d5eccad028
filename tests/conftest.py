"""Shared test configuration: small thread pools so parallel workers don't thrash 2 cores."""

import torch

torch.set_num_threads(1)
