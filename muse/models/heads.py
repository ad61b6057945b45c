"""Output heads: one linear layer per target on top of any encoder.

A continuous target gets one value per step, (B, T), or per item, (B,), when the encoder
pools, optionally squashed by an output activation (End2You: tanh, the labels' range); a class
target gets logits, (B, num_classes).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from torch import Tensor, nn

KINDS = ("continuous", "classes")
ACTIVATIONS = {None: nn.Identity, "tanh": nn.Tanh}


class Heads(nn.Module):
    """`targets`: [{"name", "kind": continuous | classes, "num_classes" (classes only)}];
    `activation`: None or "tanh", applied to the continuous outputs."""

    def __init__(self, input_dim: int, targets: Sequence[Mapping],
                 activation: str | None = None) -> None:
        super().__init__()
        if activation not in ACTIVATIONS:
            raise ValueError(f"output activation must be one of {list(ACTIVATIONS)}, "
                             f"not {activation!r}")
        self.activation = ACTIVATIONS[activation]()
        self.kinds = {}
        layers = {}
        for target in targets:
            name, kind = target["name"], target["kind"]
            if kind not in KINDS:
                raise ValueError(f"target {name}: kind must be one of {KINDS}, not {kind!r}")
            self.kinds[name] = kind
            width = 1 if kind == "continuous" else target["num_classes"]
            layers[name] = nn.Linear(input_dim, width)
        self.layers = nn.ModuleDict(layers)

    def forward(self, encoded: Tensor) -> dict[str, Tensor]:
        return {
            name: self.activation(layer(encoded).squeeze(-1))
            if self.kinds[name] == "continuous" else layer(encoded)
            for name, layer in self.layers.items()
        }
