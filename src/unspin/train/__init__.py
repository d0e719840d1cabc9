"""Training (needs the ``[train]`` extra: torch + transformers). Never imported at inference."""
