"""A synthetic MuSe-CaR: `synthesize` writes a package in the official layout (see
docs/package-layout.md) with a known signal planted the way it lives in the real data.

Scales (`plan.SCALES`): "demo" is 12 videos of about 2 minutes with egemaps, fasttext, vggface
and au (trains in about a minute on two cores); "full" is the real size - 291 videos, 36 h,
518 400 label steps, about 6.5 k topic segments - with all 14 feature sets.

Plan (`plan`): video ids are a sorted random sample of 1..400 (not contiguous), split about
60/20/20 into train/devel/test with at least one video each; lengths vary about +-50 %. A video
is a run of 250 ms steps cut into segments of 8-28 s, each one topic (imbalanced over the 10
topics, never the same twice in a row); about 10 % of the later segments are adverts, which
MuSe-Trust keeps and MuSe-Wild and MuSe-Topic drop (every package has at least one). Segment
ids are the same in the three sub-challenges, so Wild and Topic skip the advert ids.

Signals (`signals`): noiseless arousal and valence are slow noise plus speaker/video and
segment offsets, tanh-squashed into [-1, 1]; trustworthiness is tanh(0.8 valence + 0.5 arousal
+ 0.3 own slow component). Gold labels add smooth annotation noise, clipped to [-1, 1], 4
decimals. MuSe-Topic: the gold topic differs from the spoken one in 3 % of segments; arousal
and valence classes are the tertiles (over the whole package) of the gold segment mean.

Where the signal is (`features`, `text`, `audio`):
* audio features (egemaps, lld at 10 ms, deepspectrum) and the wav files carry arousal, plus
  per-video recording conditions;
* text carries topic and valence: words come from the segment's topic vocabulary and from
  positive/negative words chosen by valence; fastText-like vectors put related words close;
* vision carries valence, arousal and trust's own component weakly, under smooth noise and a
  per-video identity offset; face sets are zero rows while no face is visible (a Markov chain);
* a few NaN cells per package sit in the audio and vision files (never text, never labels);
* every column has the magnitude of its real counterpart (`descriptors`: jitter about 0.02 next
  to formants in Hz, landmarks in pixels, probabilities, ReLU-sparse CNN embeddings).

`metadata/ceilings.json` holds `{task: {partition: {target: score}}}`: the official score of
the noiseless signal against the gold labels - CCC for continuous targets, 0.66 F1 + 0.34 UAR
(0-100) for MuSe-Topic - what a model that recovered the planted signal exactly would reach.

Files: 16 kHz mono int16 wav per segment, voiced while words are spoken; per-segment
transcripts of the same words as the fastText rows; the topic class mapping; aggregated tables
for train, devel and test. Feature values have 5 significant digits. Files with equal bytes within
a video (the same rows in several sub-challenges or alignments) are hard links of one another.
Every draw comes from a stream named by (seed, video, purpose): same arguments, same bytes,
and a feature file does not change when other feature sets are added or dropped.
"""

from muse.package.synthetic.build import synthesize
from muse.package.synthetic.plan import SCALES, SynthesisError

__all__ = ["SCALES", "SynthesisError", "synthesize"]
