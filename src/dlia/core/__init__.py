"""The engine: tensors, ops and reverse-mode autodiff."""
