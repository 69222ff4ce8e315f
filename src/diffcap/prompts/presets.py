"""Template presets: named sets of the seven prompt templates shipped as package data.

A preset is ``templates/<preset>.yaml`` (description, generation defaults, optional system
prompt, which file holds each template) plus the files it names (``<preset>.<name>.txt`` by
default). Built-in presets: ``diffcap`` (our prompts) and ``sharecaptioner`` (the released
ShareCaptioner-Video formats with real timestamps). ``preset`` may also be the path of a
preset YAML file of your own; its template paths are relative to that file.

    ts = load_templates("sharecaptioner", overrides={"summary": "my_summary.txt"})
    ts["first_frame"].render(index=1, time=0.0, num_frames=5, duration=10.0)
    ts.provenance()   # {"first_frame": "sharecaptioner/first_frame@1", "summary": "custom/..."}
    ts.generation     # {"num_beams": 3, "max_tokens": 2048}
    ts.pair_layout    # "composite": what --pair-layout auto uses with this preset
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

import yaml

from diffcap.errors import TemplateError
from diffcap.prompts.render import VARIABLES, Template

#: The template names every preset provides.
#: The templates every preset has (and records' provenance lists).
TREE_TEMPLATES: tuple[str, ...] = ("segment_summary", "merge_summary")
TEMPLATE_NAMES: tuple[str, ...] = tuple(n for n in VARIABLES if n not in TREE_TEMPLATES)
_PRESET_KEYS = frozenset({"id", "description", "system", "generation", "pair_layout", "templates"})
#: Frame-pair layouts a preset may ask for (what ``--pair-layout auto`` then uses).
PAIR_LAYOUTS = frozenset({"two_images", "composite"})
#: Generation settings a preset may set (ModelConfig field names).
_GENERATION_KEYS = frozenset({"max_tokens", "temperature", "num_beams"})


@dataclass(frozen=True)
class TemplateSet:
    """The loaded templates of one preset (plus user overrides)."""

    preset: str
    templates: Mapping[str, Template]
    #: Generation defaults of the preset (``num_beams``, ``max_tokens``, ``temperature``);
    #: the captioning layer applies them where the user did not set a value.
    generation: Mapping[str, Any] = field(default_factory=dict)
    #: System prompt sent with every request, or None.
    system: str | None = None
    description: str = ""
    #: How slide mode shows a keyframe pair when ``pair_layout`` is ``auto``: ``"composite"``
    #: (one vertical image with a 50-px gap, as the released ShareCaptioner-Video takes a pair),
    #: ``"two_images"``, or None (auto: two images when the backend takes several).
    pair_layout: str | None = None
    #: The summary-tree templates (long videos): used only when a timeline does not fit one
    #: summary request, so they are not part of :meth:`provenance`.
    tree: Mapping[str, Template] = field(default_factory=dict)

    def __getitem__(self, name: str) -> Template:
        try:
            return self.templates[name] if name in self.templates else self.tree[name]
        except KeyError:
            raise TemplateError(
                f"no template named '{name}'", hint=f"known: {', '.join(self.templates)}"
            ) from None

    def __contains__(self, name: object) -> bool:
        return name in self.templates

    def __iter__(self) -> Iterator[str]:
        return iter(self.templates)

    def render(self, name: str, **variables: Any) -> str:
        return self[name].render(**variables)

    def provenance(self) -> dict[str, str]:
        """``{"first_frame": "diffcap/first_frame@1", ...}`` for run records."""
        return {name: tpl.ref for name, tpl in self.templates.items()}

    def tree_provenance(self) -> dict[str, str]:
        """The summary-tree templates' id@version (records of videos that used the tree)."""
        return {name: tpl.ref for name, tpl in self.tree.items()}


def available_presets() -> list[str]:
    """Names of the presets shipped with diffcap."""
    root = resources.files("diffcap.prompts") / "templates"
    return sorted(p.name[:-5] for p in root.iterdir() if p.name.endswith(".yaml"))


def load_templates(
    preset: str = "diffcap", overrides: Mapping[str, str | os.PathLike[str]] | None = None
) -> TemplateSet:
    """Load a preset and replace any of its templates by the user's files."""
    spec, base, preset_id = _read_preset(preset)
    files: dict[str, Any] = dict(spec.get("templates") or {})
    unknown = set(files) - set(TEMPLATE_NAMES) - set(TREE_TEMPLATES)
    if unknown:
        raise TemplateError(f"preset '{preset}' names unknown template(s) {sorted(unknown)}")
    templates: dict[str, Template] = {}
    for name in TEMPLATE_NAMES:
        rel = files.get(name, f"{preset_id}.{name}.txt")
        text, source = _read_text(base, rel)
        default_id = f"{preset_id}/{name}"
        templates[name] = Template.parse(
            text, name=name, default_id=default_id, allowed=VARIABLES[name], source=source
        )
    tree: dict[str, Template] = {}
    for name in TREE_TEMPLATES:
        # A preset of one's own may lack them: diffcap's are used then.
        where, rel = base, files.get(name, f"{preset_id}.{name}.txt")
        if not (where / rel).is_file():
            where, rel = resources.files("diffcap.prompts") / "templates", f"diffcap.{name}.txt"
        text, source = _read_text(where, rel)
        tree[name] = Template.parse(
            text,
            name=name,
            default_id=f"{preset_id}/{name}",
            allowed=VARIABLES[name],
            source=source,
        )
    for name, path in (overrides or {}).items():
        if name in TREE_TEMPLATES:
            tree[name] = load_template_file(name, path)
            continue
        if name not in VARIABLES:
            raise TemplateError(
                f"cannot override unknown template '{name}'",
                hint=f"template names: {', '.join(TEMPLATE_NAMES)}",
            )
        templates[name] = load_template_file(name, path)
    generation = dict(spec.get("generation") or {})
    bad = set(generation) - _GENERATION_KEYS
    if bad:
        raise TemplateError(
            f"preset '{preset}': unknown generation setting(s) {sorted(bad)}",
            hint=f"allowed: {sorted(_GENERATION_KEYS)}",
        )
    return TemplateSet(
        preset=preset_id,
        templates=templates,
        generation=generation,
        system=spec.get("system"),
        description=str(spec.get("description", "")).strip(),
        pair_layout=_pair_layout(spec, preset),
        tree=tree,
    )


def _pair_layout(spec: Mapping[str, Any], preset: str) -> str | None:
    layout = spec.get("pair_layout")
    if layout is None or layout == "auto":
        return None
    if layout not in PAIR_LAYOUTS:
        raise TemplateError(
            f"preset '{preset}': pair_layout {layout!r} is not one of {sorted(PAIR_LAYOUTS)}",
            hint="use composite, two_images, or leave it out (auto)",
        )
    return str(layout)


def load_template_file(name: str, path: str | os.PathLike[str]) -> Template:
    """Read one user template file for template ``name`` (checked against its variables)."""
    p = Path(path).expanduser()
    try:
        text = p.read_text(encoding="utf-8")
    except OSError as exc:
        raise TemplateError(
            f"cannot read template file for '{name}': {p}: {exc.strerror or exc}",
            hint="check the path given in caption.templates / --template",
        ) from exc
    return Template.parse(
        text, name=name, default_id=f"custom/{p.stem}", allowed=VARIABLES[name], source=str(p)
    )


def _read_preset(preset: str) -> tuple[dict[str, Any], Any, str]:
    """-> (preset spec, directory the template paths are relative to, preset id)."""
    if preset.endswith((".yaml", ".yml")) or os.sep in preset:
        path = Path(preset).expanduser()
        if not path.is_file():
            raise TemplateError(f"preset file not found: {path}")
        base: Any = path.parent
        text = path.read_text(encoding="utf-8")
        default_id = path.stem
    else:
        base = resources.files("diffcap.prompts") / "templates"
        res = base / f"{preset}.yaml"
        if not res.is_file():
            raise TemplateError(
                f"unknown prompt preset '{preset}'",
                hint=f"choose one of {', '.join(available_presets())} or give a preset .yaml path",
            )
        text = res.read_text(encoding="utf-8")
        default_id = preset
    try:
        spec = yaml.safe_load(text) or {}
    except yaml.YAMLError as exc:
        raise TemplateError(f"preset '{preset}' is not valid YAML: {exc}") from exc
    if not isinstance(spec, dict) or set(spec) - _PRESET_KEYS:
        raise TemplateError(
            f"preset '{preset}' must be a mapping with keys among {sorted(_PRESET_KEYS)}"
        )
    return spec, base, str(spec.get("id") or default_id)


def _read_text(base: Any, rel: str) -> tuple[str, str]:
    target = base / rel
    try:
        return target.read_text(encoding="utf-8"), str(rel)
    except (OSError, FileNotFoundError) as exc:
        raise TemplateError(f"preset template file missing: {rel}: {exc}") from exc
