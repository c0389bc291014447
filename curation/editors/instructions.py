"""Edit instructions: templates per edit type filled from an edit's slots, phrasing chosen by seed,
optionally rewritten by a callable (a VLM client plugs in there).

A rewrite that fails, raises or returns something unusable never loses the pair: the template text is
kept and the reason recorded, so a flaky VLM only costs variety.
"""

from __future__ import annotations

import string
from collections.abc import Callable, Mapping
from dataclasses import dataclass

from curation.editors.base import EditError, pick

TEMPLATES: dict[str, tuple[str, ...]] = {
    "removal": (
        "Remove the {object}.",
        "Erase the {object} from the video.",
        "Take the {object} out of the scene.",
        "Delete the {object} and fill in the background behind it.",
    ),
    "addition": (
        "Add {a_object}.",
        "Put {a_object} into the scene.",
        "Insert {a_object} moving through the video.",
        "Make {a_object} appear in the clip.",
    ),
    "recolour": (
        "Make the {object} {colour}.",
        "Change the colour of the {object} to {colour}.",
        "Turn the {object} {colour}.",
        "Recolour the {object} in {colour}, keeping everything else the same.",
    ),
    "background/blur": (
        "Blur the background behind the {object}.",
        "Keep the {object} sharp and blur everything else.",
        "Add a shallow depth of field so only the {object} is in focus.",
    ),
    "background/desaturate": (
        "Make the background black and white, keeping the {object} in colour.",
        "Remove the colour from everything except the {object}.",
        "Turn the background grey but leave the {object} as it is.",
    ),
    "background/replace": (
        "Replace the background with {background}.",
        "Put the {object} in front of {background}.",
        "Change the scene behind the {object} to {background}.",
    ),
    "style/art": (
        "Turn the video into {style}.",
        "Make the clip look like {style}.",
        "Redraw the video as {style}.",
    ),
    "style/grade": (
        "Give the video {style}.",
        "Apply {style} to the clip.",
        "Colour-grade the video with {style}.",
    ),
}
STYLE_PHRASES = {
    "painting": "a watercolour painting", "pencil": "a pencil sketch", "cartoon": "a cartoon",
    "sepia": "an old sepia tone", "warm": "a warm, golden colour grade", "cool": "a cool, bluish colour grade",
    "black_and_white": "a black-and-white look",
}
MAX_CHARS = 300
Rewrite = Callable[[str, Mapping[str, str]], str]
"""(template instruction, slots) -> rewritten instruction; e.g. a VLM asked to paraphrase."""


@dataclass(frozen=True)
class Instruction:
    text: str
    template: str  # "<key>#<index>": which template made the text before any rewrite
    rewritten: bool = False
    rewrite_note: str = ""  # why a rewrite was not used, empty when it was or none was asked


def template_key(edit_type: str, slots: Mapping[str, str]) -> str:
    """The TEMPLATES key of an edit: the type, refined by background mode or style family."""
    if edit_type == "background":
        return f"background/{slots.get('mode', 'blur')}"
    if edit_type == "style":
        return f"style/{slots.get('family', 'art')}"
    return edit_type


def _fill(template: str, slots: Mapping[str, str]) -> str:
    values = dict(slots)
    if "object" in values:  # "a horse", "an ellipse"
        values["a_object"] = ("an " if values["object"][:1].lower() in "aeiou" else "a ") + values["object"]
    if "style" in values:
        values["style"] = STYLE_PHRASES.get(values["style"], values["style"].replace("_", " "))
    needed = {name for _, name, _, _ in string.Formatter().parse(template) if name}
    missing = sorted(needed - set(values))
    if missing:
        raise EditError(f"instruction template {template!r} needs slot(s) {', '.join(missing)}")
    return template.format(**{k: v for k, v in values.items() if k in needed})


def make_instruction(edit_type: str, slots: Mapping[str, str], seed: int, rewrite: Rewrite | None = None) -> Instruction:
    """The instruction for an edit: a template chosen by seed, filled from slots, then optionally rewritten."""
    key = template_key(edit_type, slots)
    if key not in TEMPLATES:
        raise EditError(f"no instruction templates for {key!r}; known: {', '.join(TEMPLATES)}")
    options = TEMPLATES[key]
    index = options.index(pick(options, seed, "instruction"))
    text = _fill(options[index], slots)
    template = f"{key}#{index}"
    if rewrite is None:
        return Instruction(text, template)
    try:
        new = rewrite(text, dict(slots))
    except Exception as exc:  # noqa: BLE001 - a VLM client may fail any way; the template text stands
        return Instruction(text, template, rewrite_note=f"rewrite failed: {type(exc).__name__}: {exc}"[:200])
    if not isinstance(new, str) or not new.strip() or len(new) > MAX_CHARS or "\n" in new.strip():
        return Instruction(text, template, rewrite_note=f"rewrite unusable: {str(new)[:80]!r}")
    return Instruction(new.strip(), template, rewritten=True)
