"""The ``export``, ``eval``, ``train`` and ``dpo`` config sections: each command's settings are
defined once (the pydantic field), its flags are generated from them, and the same settings
come from a YAML file or ``--set``."""

from __future__ import annotations

import json
import re
import typing
from pathlib import Path
from typing import Any

import click
import pytest
import yaml
from click.testing import CliRunner
from PIL import Image
from pydantic import BaseModel

from diffcap.cli.main import cli
from diffcap.cli.sections import (
    field_default,
    flag_name,
    param_name,
    section_fields,
    section_from_params,
    section_options,
)
from diffcap.config import (
    CaptionConfig,
    DPOConfig,
    EvalConfig,
    ExportConfig,
    TrainConfig,
)
from diffcap.config.resolve import resolve_section
from diffcap.errors import ConfigError
from diffcap.timeline import Caption, Keyframe, VideoRecord
from support.cli import diffcap

#: (command name, its section model, the section name, the least arguments it needs)
COMMANDS = [
    ("export", ExportConfig, "export", ["{tmp}", "--format", "jsonl", "--out", "o.jsonl"]),
    ("eval", EvalConfig, "eval", ["mvbench", "--data", "d", "--out", "o"]),
    ("train", TrainConfig, "train", ["{tmp}", "--model", "m", "--out", "o"]),
    ("train-dpo", DPOConfig, "dpo", ["{tmp}", "--model", "m", "--out", "o"]),
]


def _command(name: str) -> click.Command:
    ctx = click.Context(cli, info_name="diffcap")
    cmd = cli.get_command(ctx, name)
    assert cmd is not None
    return cmd


@pytest.mark.parametrize(("name", "model", "section", "args"), COMMANDS)
def test_every_field_is_a_flag_whose_default_is_the_fields(
    name: str, model: type[BaseModel], section: str, args: list[str], tmp_path: Path
) -> None:
    command = _command(name)
    argv = [a.replace("{tmp}", str(tmp_path)) for a in args]
    # the values the command receives when a flag is not given
    given = command.make_context(name, argv).params
    options = {p.name: p for p in command.params}
    for path, field in section_fields(model):
        option = options.pop(param_name(section, path))
        assert isinstance(option, click.Option)
        assert flag_name(path, field) in option.opts
        assert option.help == field.description
        assert given[param_name(section, path)] == field_default(field), path
    assert not [p for p in options if p.startswith(f"{section}__")]


def test_flags_keep_their_names_ranges_and_choices() -> None:
    opts = {o: p for p in _command("eval").params for o in getattr(p, "opts", [])}
    assert repr(opts["--num-frames"].type) == repr(click.IntRange(1, 256))
    assert list(opts["--input"].type.choices) == ["grid", "frames", "keyframes", "caption"]
    assert opts["--judge-api-key"].envvar == "DIFFCAP_JUDGE_API_KEY"
    train = {o: p for p in _command("train").params for o in getattr(p, "opts", [])}
    assert {"--lora-r", "--lora-alpha", "--lora-dropout", "--lora-targets"} <= set(train)
    assert repr(train["--eval-fraction"].type) == repr(click.FloatRange(0, 1, max_open=True))
    assert train["--merge"].is_flag and train["--template"].multiple


def test_shared_defaults_come_from_the_run_config() -> None:
    from diffcap.export import ExportOptions
    from diffcap.train.sources import RunSettings

    cap = CaptionConfig()
    for value in (
        ExportConfig().fast_max_frames,
        ExportOptions().fast_max_frames,
        RunSettings().fast_max_frames,
    ):
        assert value == cap.fast_max_frames
    assert ExportOptions().fast_max_side == RunSettings().fast_max_side == cap.fast_max_side
    assert ExportOptions().prompt_preset == cap.prompt_preset


def test_eval_choices_and_the_spec_agree_with_the_section() -> None:
    from diffcap.eval.inputs import INPUT_MODES
    from diffcap.eval.run import PREFILL_MODES, EvalSpec

    ann = EvalConfig.model_fields["input_mode"].annotation
    literal = next(a for a in typing.get_args(ann) if a is not type(None))
    assert typing.get_args(literal) == INPUT_MODES
    assert typing.get_args(EvalConfig.model_fields["prefill"].annotation) == PREFILL_MODES
    # EvalSpec (eval/run.py) is the section plus what names the eval: the same defaults.
    spec = EvalSpec("mvbench", "data", "out")
    for name, field in EvalConfig.model_fields.items():
        assert getattr(spec, name) == field_default(field), name


ROUND_TRIP = [
    (ExportConfig, "export", {"tasks": ["slide", "summary"], "window": 8,
                              "pair_layout": "two_images"}),
    (EvalConfig, "eval", {"input_mode": "frames", "n_frames": 8, "videos": "v", "limit": 3}),
    (TrainConfig, "train", {"lr": 1e-3, "lora": {"r": 4, "target_modules": "q_proj"},
                            "templates": {"summary": "s.txt"}}),
    (DPOConfig, "dpo", {"beta": 0.3, "task": "summary", "max_steps": 7}),
]  # fmt: skip


@pytest.mark.parametrize(("model", "section", "values"), ROUND_TRIP)
def test_yaml_round_trip(
    model: type[BaseModel], section: str, values: dict[str, Any], tmp_path: Path
) -> None:
    cfg = model.model_validate(values)
    path = tmp_path / "c.yaml"
    path.write_text(yaml.safe_dump({section: cfg.model_dump(mode="json")}))
    again = resolve_section(model, section, path, {})
    assert again == cfg and again != model()


@pytest.mark.parametrize(
    ("section", "data", "key", "suggestion"),
    [
        ("export", {"export": {"windw": 3}}, "export.windw", "window"),
        ("train", {"train": {"lora": {"alpah": 4}}}, "train.lora.alpah", "alpha"),
        ("eval", {"eval": {"num_frame": 4}}, "eval.num_frame", "n_frames"),
    ],
)
def test_unknown_key_names_the_dotted_key(
    section: str, data: dict[str, Any], key: str, suggestion: str, tmp_path: Path
) -> None:
    model = {"export": ExportConfig, "train": TrainConfig, "eval": EvalConfig}[section]
    path = tmp_path / "c.yaml"
    path.write_text(yaml.safe_dump(data))
    with pytest.raises(ConfigError, match=re.escape(f"unknown config key '{key}'")) as info:
        resolve_section(model, section, path, {})
    assert f"did you mean '{suggestion}'" in (info.value.hint or "")


def test_unknown_top_level_key_of_a_train_file(tmp_path: Path) -> None:
    path = tmp_path / "c.yaml"
    path.write_text("train: {lr: 0.001}\ntrian: {}\n")
    with pytest.raises(ConfigError, match=re.escape("unknown config key 'trian'")):
        resolve_section(TrainConfig, "train", path, {}, others=("dpo",))


def _probe() -> click.Command:
    """A command with ExportConfig's generated flags, --config and --set; prints the section."""

    @click.command()
    @section_options(ExportConfig, "export")
    @click.option("--config", "config_path")
    @click.option("--set", "assignments", multiple=True)
    def probe(**params: Any) -> None:
        cfg = section_from_params(ExportConfig, "export", params)
        click.echo(json.dumps({**cfg.model_dump(mode="json"), "rest": params["assignments"]}))

    return probe


def test_precedence_default_yaml_set_flag(tmp_path: Path) -> None:
    path = tmp_path / "c.yaml"
    path.write_text("export: {window: 6, stride: 3, fast_layout: strip}\nmodel: {concurrency: 2}\n")
    args = ["--config", str(path), "--set", "export.stride=5", "--set", "model.x=1"]
    res = CliRunner().invoke(_probe(), [*args, "--window", "9"])
    assert res.exit_code == 0, res.output
    got = json.loads(res.output)
    # flag > --set > YAML > default; a flag left at its default does not undo the YAML
    assert (got["window"], got["stride"], got["fast_layout"]) == (9, 5, "strip")
    assert got["grid_question"] == ExportConfig().grid_question
    assert got["rest"] == ["model.x=1"]  # the run config's --set, left for it


def test_bad_set_value_names_the_key(tmp_path: Path) -> None:
    res = CliRunner().invoke(_probe(), ["--set", "export.window=0"])
    assert isinstance(res.exception, ConfigError)
    assert "config key 'export.window'" in str(res.exception)


@pytest.fixture
def records(tmp_path: Path) -> Path:
    folder = tmp_path / "captions.run" / "keyframes" / "v1"
    folder.mkdir(parents=True)
    files = []
    for i, colour in enumerate([(200, 30, 30), (30, 200, 30)]):
        Image.new("RGB", (64, 48), colour).save(folder / f"{i}.jpg")
        files.append(f"captions.run/keyframes/v1/{i}.jpg")
    rec = VideoRecord(
        "v1",
        "v1.mp4",
        4.0,
        [Keyframe(0, 0.0, 0, files[0]), Keyframe(1, 2.5, 75, files[1])],
        [
            Caption("0", "a red frame", time=0.0),
            Caption("1", "it turns green", time=2.5),
            Caption("-1", "red, then green", start=0.0, end=4.0),
        ],
        "slide",
    )
    path = tmp_path / "captions.jsonl"
    path.write_text(json.dumps(rec.to_json()) + "\n")
    return path


def test_export_reads_its_section_from_the_config_file(records: Path, tmp_path: Path) -> None:
    cfg = tmp_path / "c.yaml"
    cfg.write_text("export: {tasks: [fast], absolute_paths: true}\ncaption: {}\n")
    out = tmp_path / "l.json"
    base = ["-q", "export", str(records), "--format", "llava", "--out", str(out)]
    res = CliRunner().invoke(cli, [*base, "--config", str(cfg)])
    assert res.exit_code == 0, res.output
    assert [i["task"] for i in json.loads(out.read_text())] == ["fast"]
    res = CliRunner().invoke(cli, [*base, "--config", str(cfg), "--tasks", "slide"])
    assert res.exit_code == 0, res.output
    items = json.loads(out.read_text())
    assert [i["task"] for i in items] == ["slide", "slide"]
    assert Path(items[0]["image"]).is_absolute()  # the file's absolute_paths still applies


def test_train_config_errors_before_any_training(tmp_path: Path) -> None:
    cfg = tmp_path / "t.yaml"
    cfg.write_text("train: {lora: {r: 0}}\n")
    base = ["train", str(tmp_path), "--model", "m", "--out", str(tmp_path / "o")]
    with pytest.raises(ConfigError, match=re.escape("config key 'train.lora.r'")):
        cli.main([*base, "--config", str(cfg)], standalone_mode=False)
    with pytest.raises(ConfigError, match=re.escape("unknown config key 'model.concurrency'")):
        cli.main([*base, "--set", "model.concurrency=2"], standalone_mode=False)
    assert diffcap(*base, "--set", "train.lora.r=0") == 2  # a usage error
