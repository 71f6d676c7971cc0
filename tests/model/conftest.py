try:
    import torch
except ImportError:  # the model tests skip themselves without torch
    torch = None

if torch is not None:
    # The test models are tiny: one thread is faster than two, and immune to oversubscription.
    torch.set_num_threads(1)
