"""Training: configuration, the training step and loop, resumable run state, multi-process training."""
