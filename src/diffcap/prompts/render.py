"""One prompt template: parsing a template file, checking its placeholders, rendering it.

A template file is plain text with an optional YAML header between two ``---`` lines::

    ---
    id: mylab/differential
    version: 3
    item: "[{time:.1f} s] {caption}"      # how one timeline entry is written (summaries)
    derived:                               # a variable chosen by the value of another one
      image_note:
        from: layout
        two_images: "The first image is the earlier frame."
        composite: "The earlier frame is on top."
    ---
    Frame {prev_index} at {prev_time:.1f} s and frame {index} at {time:.1f} s. {image_note}

Placeholders are Python ``str.format`` fields (``{name}`` or ``{name:.1f}``; ``{{``/``}}``
for literal braces). The body is the text after the header with one trailing newline removed.

    tpl = Template.parse(text, name="summary", allowed={"timeline", "duration"})
    tpl.render(timeline=[(0.0, "A dog sits."), (2.0, "It stands up.")], duration=4.0)
"""

from __future__ import annotations

import hashlib
import string
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import yaml

from diffcap.errors import TemplateError

#: Variables that every template may use, per template name. Callers may pass more; a template
#: that uses a placeholder outside its set is rejected when it is loaded (a typo caught early).
#: What was captioned: ``duration`` is its length (``end - start``), ``start``/``end`` its
#: bounds in seconds from the start of the file (the clock keyframe times use),
#: ``video_duration`` the whole file's length and ``scope`` ``"video"`` (the whole file) or
#: ``"clip"`` (a window of it).
SPAN_VARIABLES = frozenset({"start", "end", "duration", "video_duration", "scope"})
VARIABLES: dict[str, frozenset[str]] = {
    "first_frame": frozenset({"index", "time", "num_frames"}) | SPAN_VARIABLES,
    "differential": frozenset(
        {"prev_index", "prev_time", "index", "time", "previous", "layout", "num_frames", "camera"}
    )
    | SPAN_VARIABLES,
    "summary": frozenset({"timeline", "num_frames", "camera"}) | SPAN_VARIABLES,
    "fast": frozenset({"num_frames", "times", "layout"}) | SPAN_VARIABLES,
    "clip_summary": frozenset({"timeline", "num_frames"}) | SPAN_VARIABLES,
    # The summary tree (long videos): one part's captions, then parts' captions merged.
    "segment_summary": frozenset({"timeline", "num_frames", "start_stamp", "end_stamp"})
    | SPAN_VARIABLES,
    "merge_summary": frozenset({"timeline", "num_frames", "start_stamp", "end_stamp"})
    | SPAN_VARIABLES,
    "recaption": frozenset({"text"}),
    "short_caption": frozenset({"duration"}),
}

#: Variables a caller may leave out, and what they read as then: ``camera`` is the measured
#: camera motion as a fact (:mod:`diffcap.captioning.camera_facts`), empty when none.
OPTIONAL_VARIABLES: dict[str, str] = {"camera": ""}

#: Seconds within which a window's bounds count as the file's own (float noise, rounding).
SPAN_TOLERANCE_S = 0.05

#: Item format used for a ``timeline`` list when a template's header gives none.
DEFAULT_ITEM = "[{time:.1f} s] {caption}"
_ITEM_FIELDS = frozenset({"index", "time", "caption", "start", "end", "stamp"})
_HEADER_KEYS = frozenset({"id", "version", "item", "derived", "description"})


def format_seconds(seconds: float, digits: int = 1) -> str:
    """``12.0`` -> ``'12.0 s'``: the time format of diffcap's own prompts."""
    return f"{seconds:.{digits}f} s"


def format_times(times: Iterable[float], digits: int = 1) -> str:
    """``[0, 2.5]`` -> ``'0.0 s, 2.5 s'``."""
    return ", ".join(format_seconds(t, digits) for t in times)


def clock(seconds: float) -> str:
    """``75.4`` -> ``'01:15'``; ``3725`` -> ``'1:02:05'``: the time format of citations."""
    total = max(0, int(seconds))
    h, rem = divmod(total, 3600)
    m, s = divmod(rem, 60)
    return f"{h}:{m:02d}:{s:02d}" if h else f"{m:02d}:{s:02d}"


def stamp(start: float, end: float | None = None) -> str:
    """``'01:15'`` for a moment, ``'01:15–02:30'`` (en dash) for a range."""
    if end is None or clock(end) == clock(start):
        return clock(start)
    return f"{clock(start)}–{clock(end)}"


def timeline_entries(timeline: Iterable[Any]) -> list[tuple[float, str]]:
    """Normalise (time, caption) pairs or :class:`~diffcap.timeline.Caption`-like objects."""
    return [(t, text) for t, _, text in _entries(timeline)]


def _entries(timeline: Iterable[Any]) -> list[tuple[float, float | None, str]]:
    """(start, end or None, text) per entry."""
    out: list[tuple[float, float | None, str]] = []
    for entry in timeline:
        end = None
        if isinstance(entry, Sequence) and not isinstance(entry, str) and len(entry) == 2:
            t, text = entry
        elif hasattr(entry, "content"):
            # Caption objects: a clip caption has start instead of time.
            t = entry.time if getattr(entry, "time", None) is not None else entry.start
            text = entry.content
            if getattr(entry, "time", None) is None:
                end = getattr(entry, "end", None)
        else:
            raise TemplateError(f"timeline entry {entry!r} is not a (time, caption) pair")
        if t is None:
            raise TemplateError(f"timeline entry {entry!r} has no time")
        out.append((float(t), None if end is None else float(end), str(text)))
    return out


def timeline_block(timeline: Iterable[Any], item: str = DEFAULT_ITEM) -> str:
    """One line per entry, each ending with a newline; ``index`` counts from 1. ``stamp`` is
    the entry's time (``mm:ss``) or range (``mm:ss–mm:ss``)."""
    lines = []
    for i, (t, end, text) in enumerate(_entries(timeline), start=1):
        fields = {
            "index": i,
            "time": t,
            "caption": text.strip(),
            "start": t,
            "end": t if end is None else end,
            "stamp": stamp(t, end),
        }
        lines.append(item.format(**fields) + "\n")
    return "".join(lines)


def span_defaults(variables: Mapping[str, Any]) -> dict[str, Any]:
    """Fill the span variables a caller left out from those it gave.

    Callers written before ``start``/``end``/``video_duration``/``scope`` existed pass only
    ``duration`` (the whole video's length) and maybe ``start``/``end``; their templates keep
    rendering as before, and new templates get a consistent span.
    """
    out = dict(variables)
    given = {k for k in ("start", "end", "duration", "video_duration") if out.get(k) is not None}
    if not given:
        return out
    start = float(out["start"]) if "start" in given else 0.0
    # Old callers' ``duration`` is the whole video's length.
    video = float(out["video_duration"] if "video_duration" in given else out.get("duration") or 0)
    if "end" in given:
        end = float(out["end"])
    elif "duration" in given:
        end = start + float(out["duration"])
    else:
        end = video
    if "video_duration" not in given and "duration" not in given:
        video = end
    defaults = {"start": start, "end": end, "duration": end - start, "video_duration": video}
    for key, value in defaults.items():
        if out.get(key) is None:
            out[key] = value
    if out.get("scope") is None:
        # A window from 0 to the end of the file is the whole video.
        clip = start > SPAN_TOLERANCE_S or end < video - SPAN_TOLERANCE_S
        out["scope"] = "clip" if clip else "video"
    return out


def placeholders(text: str) -> set[str]:
    """Names of the ``str.format`` fields in ``text`` (raises TemplateError if malformed)."""
    try:
        fields = [f for _, f, _, _ in string.Formatter().parse(text) if f is not None]
    except ValueError as exc:
        raise TemplateError(
            f"malformed placeholder: {exc}", hint="use {{ and }} for braces"
        ) from exc
    names = set()
    for f in fields:
        # "{a.b}" / "{a[0]}" reach into objects; templates get plain values only.
        if not f.isidentifier():
            raise TemplateError(f"placeholder {{{f}}} is not a plain variable name")
        names.add(f)
    return names


@dataclass(frozen=True)
class Template:
    """A parsed template. ``id``/``version`` go into run provenance."""

    name: str
    id: str
    version: str
    text: str
    item: str = DEFAULT_ITEM
    derived: Mapping[str, Mapping[str, str]] = field(default_factory=dict)
    source: str = "<string>"

    @property
    def ref(self) -> str:
        """``"diffcap/first_frame@1"``."""
        return f"{self.id}@{self.version}"

    @property
    def variables(self) -> set[str]:
        """The variables the caller must supply (derived ones resolved to their source)."""
        names = placeholders(self.text)
        for d in set(names) & set(self.derived):
            names.discard(d)
            spec = self.derived[d]
            names.add(spec["from"])
            # A derived text may itself use variables ("keyframe {index} is on top").
            for key, text in spec.items():
                if key != "from":
                    names |= placeholders(text)
        return names

    @classmethod
    def parse(
        cls,
        text: str,
        *,
        name: str,
        default_id: str | None = None,
        allowed: Iterable[str] | None = None,
        source: str = "<string>",
    ) -> Template:
        """Parse a template file's text; check placeholders against ``allowed``."""
        header, body = _split_header(text, source)
        unknown_keys = set(header) - _HEADER_KEYS
        if unknown_keys:
            raise TemplateError(
                f"{source}: unknown header key(s) {sorted(unknown_keys)}",
                hint=f"allowed: {sorted(_HEADER_KEYS)}",
            )
        digest = hashlib.sha256(text.encode()).hexdigest()[:8]
        tpl = cls(
            name=name,
            id=str(header.get("id") or default_id or f"custom/{name}"),
            # A file without a version is identified by its content hash.
            version=str(header.get("version", f"sha-{digest}")),
            text=body,
            item=str(header.get("item", DEFAULT_ITEM)),
            derived=_check_derived(header.get("derived") or {}, source),
            source=source,
        )
        tpl._check(allowed)
        return tpl

    def _check(self, allowed: Iterable[str] | None) -> None:
        bad_item = placeholders(self.item) - _ITEM_FIELDS
        if bad_item:
            raise TemplateError(
                f"{self.source}: unknown placeholder(s) in item: {sorted(bad_item)}",
                hint=f"an item may use {sorted(_ITEM_FIELDS)}",
            )
        if allowed is None:
            return
        unknown = self.variables - set(allowed)
        if unknown:
            raise TemplateError(
                f"{self.source}: unknown placeholder(s) in template '{self.name}': "
                f"{sorted(unknown)}",
                hint=f"'{self.name}' templates may use {sorted(allowed)}",
            )

    def render(self, **variables: Any) -> str:
        """Fill the placeholders. Extra variables are ignored; missing ones raise."""
        variables = {**OPTIONAL_VARIABLES, **span_defaults(variables)}
        missing = self.variables - {k for k, v in variables.items() if v is not None}
        if missing:
            raise TemplateError(
                f"template {self.ref} needs variable(s) {sorted(missing)}",
                hint=f"pass them to render(); got {sorted(variables)}",
            )
        values = dict(variables)
        if "timeline" in values and not isinstance(values["timeline"], str):
            values["timeline"] = timeline_block(values["timeline"], self.item)
        if "times" in values and not isinstance(values["times"], str):
            values["times"] = format_times(values["times"])
        for dname, spec in self.derived.items():
            key = str(values.get(spec["from"]))
            if dname in placeholders(self.text) and key not in spec:
                choices = sorted(k for k in spec if k != "from")
                raise TemplateError(
                    f"template {self.ref}: {spec['from']}={key!r} is not one of {choices}"
                )
            values[dname] = spec.get(key, "")
        try:
            for dname in self.derived:
                values[dname] = values[dname].format(**values)
            return self.text.format(**values)
        except (ValueError, TypeError, KeyError) as exc:
            raise TemplateError(f"template {self.ref} failed to render: {exc}") from exc


def _split_header(text: str, source: str) -> tuple[dict[str, Any], str]:
    text = text.replace("\r\n", "\n")
    header: dict[str, Any] = {}
    if text.startswith("---\n"):
        end = text.find("\n---\n", 3)
        if end < 0:
            raise TemplateError(f"{source}: header starts with '---' but never ends")
        try:
            header = yaml.safe_load(text[4:end]) or {}
        except yaml.YAMLError as exc:
            raise TemplateError(f"{source}: header is not valid YAML: {exc}") from exc
        if not isinstance(header, dict):
            raise TemplateError(f"{source}: header must be a mapping of key: value")
        text = text[end + 5 :]
    if text.endswith("\n"):
        text = text[:-1]
    return header, text


def _check_derived(derived: Any, source: str) -> dict[str, dict[str, str]]:
    if not isinstance(derived, dict):
        raise TemplateError(f"{source}: 'derived' must map names to {{from: VAR, VALUE: TEXT}}")
    out: dict[str, dict[str, str]] = {}
    for name, spec in derived.items():
        if not isinstance(spec, dict) or "from" not in spec:
            raise TemplateError(f"{source}: derived variable '{name}' needs a 'from' key")
        out[str(name)] = {str(k): str(v) for k, v in spec.items()}
    return out
