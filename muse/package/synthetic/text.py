"""What the reviewers say: vocabularies, timed transcripts and fastText-like word vectors.

Each word slot is a topic word (the segment's topic vocabulary, or sponsor talk in an advert),
a sentiment word (positive with a probability that rises with the step's valence), a
credibility word (hedged, evidence-based talk rather than hype, with a probability that rises
with trustworthiness' own component) or a filler. A word's vector is a pseudo-embedding seeded
by the word itself plus a shared direction for its topic, polarity or credibility, so, as with
real fastText, related words lie close and text carries topic, valence and trustworthiness.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache

import numpy as np

from muse.package.layout import FEATURE_SETS, STEP_MS, TOPIC_NAMES
from muse.package.synthetic.plan import Segment, VideoPlan
from muse.package.synthetic.seeds import stream
from muse.package.synthetic.signals import VideoSignals

TOPIC_WORDS: dict[str, tuple[str, ...]] = {
    "General Information": (
        "model", "brand", "generation", "version", "launch", "release", "lineup", "review",
        "overview", "specs", "variant", "edition", "manufacturer", "history", "segment",
        "market", "introduction", "facelift", "series", "debut", "competitors", "rivals",
    ),
    "Costs": (
        "price", "cost", "dollars", "expensive", "cheap", "budget", "financing", "lease",
        "warranty", "insurance", "value", "money", "payment", "dealer", "afford", "resale",
        "fees", "tax", "msrp", "pricey", "bargain", "depreciation",
    ),
    "Performance": (
        "engine", "horsepower", "torque", "acceleration", "turbo", "speed", "power", "cylinder",
        "transmission", "gearbox", "rpm", "litre", "seconds", "quick", "fast", "motor", "hybrid",
        "electric", "battery", "mileage", "efficiency", "diesel",
    ),
    "Quality & Aesthetic": (
        "quality", "materials", "leather", "plastic", "stitching", "finish", "design",
        "craftsmanship", "build", "sturdy", "stylish", "elegant", "paint", "chrome", "texture",
        "soft", "panel", "detail", "premium", "luxurious", "wood", "aluminium",
    ),
    "Safety": (
        "airbags", "brakes", "collision", "assist", "sensors", "camera", "lane", "blind",
        "spot", "warning", "crash", "rating", "stability", "traction", "emergency", "pedestrian",
        "detection", "braking", "cruise", "adaptive", "alert", "isofix",
    ),
    "Comfort": (
        "seats", "comfortable", "legroom", "headroom", "cushion", "heated", "ventilated",
        "quiet", "ride", "suspension", "smooth", "armrest", "lumbar", "climate", "air",
        "conditioning", "spacious", "relaxing", "massage", "padding", "support", "bumps",
    ),
    "Exterior Features": (
        "wheels", "headlights", "grille", "bumper", "tailgate", "mirrors", "roof", "spoiler",
        "rims", "doors", "hood", "trunk", "taillights", "fog", "bodywork", "fender", "sunroof",
        "windows", "antenna", "exhaust", "tires", "silhouette",
    ),
    "Interior Features": (
        "dashboard", "console", "touchscreen", "infotainment", "display", "cupholders",
        "storage", "gauges", "buttons", "knobs", "glovebox", "navigation", "speakers",
        "stereo", "usb", "charging", "ambient", "lighting", "cockpit", "cabin", "upholstery",
        "pockets",
    ),
    "Handling/Driving Experience": (
        "handling", "cornering", "steering", "grip", "corners", "road", "highway", "drive",
        "driving", "responsive", "agile", "understeer", "oversteer", "roll", "feedback",
        "throttle", "pedal", "twisty", "track", "precise", "nimble", "balanced",
    ),
    "User Experience": (
        "app", "smartphone", "bluetooth", "voice", "commands", "interface", "menu", "settings",
        "connectivity", "carplay", "android", "software", "controls", "intuitive", "easy",
        "usability", "features", "remote", "key", "keyless", "parking", "everyday",
    ),
}
ADVERT_WORDS = (
    "subscribe", "channel", "sponsor", "sponsored", "link", "description", "discount", "code",
    "offer", "website", "download", "free", "trial", "today", "deal", "shop", "visit", "sign",
    "membership", "video", "comment", "notification",
)
POSITIVE_WORDS = (
    "great", "excellent", "amazing", "love", "fantastic", "impressive", "superb", "brilliant",
    "perfect", "awesome", "wonderful", "nice", "good", "best", "enjoy", "beautiful", "happy",
    "outstanding", "pleasant", "fun", "solid", "refined",
)
NEGATIVE_WORDS = (
    "bad", "terrible", "awful", "poor", "disappointing", "hate", "horrible", "worst",
    "annoying", "flimsy", "ugly", "boring", "weak", "problem", "frustrating", "noisy",
    "uncomfortable", "sluggish", "mediocre", "lacking", "clunky", "harsh",
)
CREDIBLE_WORDS = (
    "honestly", "measured", "tested", "verified", "evidence", "data", "fair", "compared",
    "experience", "owned", "months", "checked", "consistent", "realistic", "transparent",
    "objectively", "independent", "results", "numbers", "reliable", "proven", "documented",
)
DUBIOUS_WORDS = (
    "supposedly", "hype", "rumour", "allegedly", "gimmick", "claims", "marketing", "slogan",
    "promise", "insane", "unbelievable", "guaranteed", "revolutionary", "literally", "crazy",
    "trust", "whatever", "apparently", "magic", "miracle", "ultimate", "hyped",
)
FILLER_WORDS = (
    "the", "and", "it", "is", "this", "that", "you", "i", "we", "really", "so", "a", "of",
    "to", "in", "with", "on", "just", "very", "here", "now", "actually", "pretty", "also",
)
EMBEDDING_DIM = FEATURE_SETS["fasttext"].dim
WORD_KINDS = ("topic", "sentiment", "credibility", "filler")
WORD_KIND_P = (0.35, 0.3, 0.2, 0.15)
WORD_MS = (250, 650)  # every word covers at least one step centre, so each shows in the steps
GAP_MS = (20, 200)
PAUSE_MS = (1000, 3000)  # a silence: its steps carry no word
PAUSE_RATE = 0.08
TOPIC_PULL = 1.5  # topic words share a direction 1.5 times as long as the polarity one
SENTIMENT_SLOPE = 6.0  # P(positive) = sigmoid(slope * valence): 0.95 at valence 0.5
CREDIBILITY_SLOPE = 3.0  # P(credible) = sigmoid(slope * own trust): 0.82 at one half


@dataclass(frozen=True)
class Transcript:
    """The words of one video in time order; times are integer ms from the start of the video."""

    words: tuple[str, ...]
    start: np.ndarray
    end: np.ndarray
    segment_id: np.ndarray

    def vectors(self) -> np.ndarray:
        return np.stack([word_vector(w) for w in self.words])

    def step_words(self, n_steps: int) -> np.ndarray:
        """Per step, the index of the word spoken at its centre, or -1 in silence."""
        centres = np.arange(n_steps) * STEP_MS + STEP_MS // 2
        index = np.searchsorted(self.start, centres, side="right") - 1
        inside = index >= 0
        inside[inside] = centres[inside] < self.end[index[inside]]
        return np.where(inside, index, -1)


def _direction(name: str) -> np.ndarray:
    return stream("fasttext direction", name).standard_normal(EMBEDDING_DIM)


@cache
def _word_directions() -> dict[str, np.ndarray]:
    """The semantic direction each non-filler word shares with its group."""
    polarity = _direction("polarity")
    # Topic words cluster tighter than sentiment words, so valence does not drown the topic.
    groups = {name: (words, TOPIC_PULL * _direction(name)) for name, words in TOPIC_WORDS.items()}
    groups["advert"] = (ADVERT_WORDS, _direction("advert"))
    groups["positive"] = (POSITIVE_WORDS, polarity)
    groups["negative"] = (NEGATIVE_WORDS, -polarity)
    credibility = _direction("credibility")
    groups["credible"] = (CREDIBLE_WORDS, credibility)
    groups["dubious"] = (DUBIOUS_WORDS, -credibility)
    return {word: direction for words, direction in groups.values() for word in words}


@cache
def word_vector(word: str) -> np.ndarray:
    """A fixed 300-d vector for `word`, the same in every package (like a pretrained model)."""
    own = stream("fasttext word", word).standard_normal(EMBEDDING_DIM)
    shared = _word_directions().get(word)
    vector = own if shared is None else own + shared
    return 0.1 * vector  # component scale of real fastText vectors


def transcribe(video: VideoPlan, signals: VideoSignals, seed: int) -> Transcript:
    rng = stream(seed, video.video_id, "transcript")
    parts = [_segment_words(rng, s, signals.clean["valence"], signals.trust_own)
             for s in video.segments]
    words = tuple(w for part in parts for w in part[0])
    start, end, segment_id = (np.concatenate([part[i] for part in parts]) for i in (1, 2, 3))
    return Transcript(words, start, end, segment_id)


def _segment_words(rng: np.random.Generator, segment: Segment, valence: np.ndarray,
                   trust_own: np.ndarray) -> tuple[list[str], np.ndarray, np.ndarray, np.ndarray]:
    begin, finish = segment.start * STEP_MS, segment.stop * STEP_MS
    slots = (finish - begin) // WORD_MS[0] + 1  # more than can fit
    length = rng.integers(WORD_MS[0], WORD_MS[1] + 1, slots)
    gap = np.where(rng.random(slots) < PAUSE_RATE,
                   rng.integers(*PAUSE_MS, slots), rng.integers(*GAP_MS, slots))
    start = begin + rng.integers(0, 500) + np.concatenate([[0], np.cumsum(length + gap)[:-1]])
    end = start + length
    keep = end <= finish
    start, end = start[keep], end[keep]
    kind = rng.choice(len(WORD_KINDS), size=start.size, p=WORD_KIND_P)
    topic_words = ADVERT_WORDS if segment.advert else TOPIC_WORDS[TOPIC_NAMES[segment.topic]]
    # Sentiment follows the noiseless valence at the word's onset.
    onset_valence = valence[start // STEP_MS]
    positive = rng.random(start.size) < 1.0 / (1.0 + np.exp(-SENTIMENT_SLOPE * onset_valence))
    onset_own = trust_own[start // STEP_MS]
    credible = rng.random(start.size) < 1.0 / (1.0 + np.exp(-CREDIBILITY_SLOPE * onset_own))
    pick = rng.integers(0, 1 << 30, start.size)  # an index into whichever list the slot uses
    words = []
    for k, p, c, i in zip(kind, positive, credible, pick, strict=True):
        pool = (topic_words, POSITIVE_WORDS if p else NEGATIVE_WORDS,
                CREDIBLE_WORDS if c else DUBIOUS_WORDS, FILLER_WORDS)[k]
        words.append(pool[i % len(pool)])
    return words, start, end, np.full(start.size, segment.segment_id)
