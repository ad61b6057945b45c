"""muse: train, compare and submit multimodal sentiment models for the MuSe 2020 challenge."""

__version__ = "0.1.0"
