"""The paper's fine-tuned ALBERT baseline for MuSe-Topic (section 5.4): text only.

Each segment's transcript (its words joined in order, the batch's `text`) is tokenised and read
by a pretrained ALBERT; the encoder returns ALBERT's pooled output ([CLS] through its dense +
tanh pooler) after the classifier dropout, so that the linear heads of `MuseModule` on top of it
make exactly `AlbertForSequenceClassification`'s classifier, one head per target.

Weights and tokenizer come from one place, `pretrained`: a Hugging Face model name (the paper:
`albert-xxlarge-v2`) or a local directory written by `save_pretrained`, always both loaded by
`from_pretrained`. A checkpoint holds the fine-tuned weights but not the tokenizer, so reloading
one reads `pretrained` again: that directory (or cached download) must still be there.

Tokenisation happens in `forward`: the fast (Rust) tokenizer needs a few milliseconds for a
batch, nothing next to ALBERT itself, and the batches stay free of one model's token ids.
"""

from __future__ import annotations

import os
from pathlib import Path

from torch import Tensor, nn
from transformers import AutoModel, AutoTokenizer

from muse.errors import MuseError

PAPER_MODEL = "albert-xxlarge-v2"


def _offline() -> bool:
    """Whether downloads are off, read now: the hub reads its flag once, at import."""
    flags = (os.environ.get("HF_HUB_OFFLINE"), os.environ.get("TRANSFORMERS_OFFLINE"))
    return any(str(flag).upper() in {"1", "ON", "YES", "TRUE"} for flag in flags)


def _looks_like_path(name: str) -> bool:
    """A hub name is `name` or `owner/name`; anything else can only mean a local directory."""
    return name.startswith((".", "~", "/", os.sep)) or name.count("/") > 1


def _missing(pretrained: str, reason: str) -> MuseError:
    return MuseError(
        f"model.pretrained={pretrained}: {reason}. Download {PAPER_MODEL} on a machine with "
        f"internet (AutoModel.from_pretrained('{PAPER_MODEL}').save_pretrained(DIR), and the "
        f"same with AutoTokenizer), copy DIR to this machine and pass model.pretrained=DIR")


def load_pretrained(pretrained: str) -> tuple[nn.Module, object]:
    """(model, tokenizer) from a local directory or a hub name; a MuseError if not found.

    A local directory is read with `local_files_only`, as is a hub name when downloads are
    off (HF_HUB_OFFLINE), so a missing model fails at once rather than after network retries.
    """
    local = Path(pretrained).expanduser()
    if local.is_dir():
        source, local_only = str(local), True
        reason = "this directory holds no complete ALBERT model and tokenizer"
    elif _looks_like_path(pretrained) or local.exists():
        raise _missing(pretrained, f"no such directory ({local.resolve()})")
    else:
        source, local_only = pretrained, _offline()
        reason = ("the weights could not be found (not a local directory, not in the Hugging "
                  "Face cache) and this machine cannot download them")
    try:
        tokenizer = AutoTokenizer.from_pretrained(source, local_files_only=local_only)
        model = AutoModel.from_pretrained(source, local_files_only=local_only)
    except (OSError, ValueError) as error:
        first_line = (str(error).strip().splitlines() or [""])[0]
        raise _missing(pretrained, f"{reason} ({type(error).__name__}: {first_line})") from error
    if model.config.model_type != "albert":
        raise MuseError(f"model.pretrained={pretrained} is a {model.config.model_type} model, "
                        "not ALBERT")
    return model, tokenizer


class AlbertText(nn.Module):
    """Encoder: batch dict with `text` (list of str) -> pooled (B, hidden size).

    Args:
        input_dim: width of the fused features, unused: ALBERT reads the transcripts only.
        pretrained: Hugging Face model name or local directory with weights and tokenizer.
        max_length: tokens per segment, longer transcripts are truncated (the paper: 300).
    """

    def __init__(self, input_dim: int, pretrained: str = PAPER_MODEL,
                 max_length: int = 300) -> None:
        super().__init__()
        del input_dim
        self.pretrained = str(pretrained)
        self.max_length = max_length
        self.albert, self.tokenizer = load_pretrained(self.pretrained)
        # from_pretrained hands the model over in eval mode, and Lightning keeps the modes it
        # finds when fitting starts: without this, fine-tuning would run without dropout.
        self.albert.train()
        config = self.albert.config
        self.dropout = nn.Dropout(config.classifier_dropout_prob)
        self.output_dim = config.hidden_size
        self.per_step = False

    def forward(self, batch: dict) -> Tensor:
        tokens = self.tokenizer(list(batch["text"]), padding=True, truncation=True,
                                max_length=self.max_length, return_tensors="pt")
        device = self.albert.get_input_embeddings().weight.device
        outputs = self.albert(**{key: value.to(device) for key, value in tokens.items()})
        return self.dropout(outputs.pooler_output)
