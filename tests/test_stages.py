"""The stage table: one list of stages that the CLI, the pipeline and the config all follow."""

import argparse
import ast
import inspect
from pathlib import Path

import pytest

from mmrec.cli import build_parser
from mmrec.config import ConfigError, MMRecConfig, config_fields, load_config
from mmrec.stages import COMMANDS, PIPELINE_STAGES, STAGES, command

PACKAGE = Path(__file__).resolve().parents[1] / "mmrec"
SECTIONS = set(MMRecConfig.model_fields) - {"artifact_root"}
WHOLE_SECTION = {"model_copy", "model_dump"}  # a method on a section: the stage reads all of it


def settings_read(package: Path) -> set[str]:
    """What a stage package reads of the config: `config.<section>` and `config.<section>.<key>` chains."""
    reads = set()
    for path in package.glob("*.py"):
        nodes = list(ast.walk(ast.parse(path.read_text())))
        sections = {id(n): n.attr for n in nodes if isinstance(n, ast.Attribute) and isinstance(n.value, ast.Name)
                    and n.value.id == "config" and n.attr in SECTIONS}  # config.<section>
        keyed = set()
        for node in nodes:  # config.<section>.<key>
            if isinstance(node, ast.Attribute) and id(node.value) in sections and node.attr not in WHOLE_SECTION:
                reads.add(f"{sections[id(node.value)]}.{node.attr}")
                keyed.add(id(node.value))
        reads.update(section for node_id, section in sections.items() if node_id not in keyed)
    return reads


def test_the_table_is_the_pipeline_the_config_and_the_cli():
    assert PIPELINE_STAGES == tuple(s.name for s in STAGES) == load_config().pipeline.stages
    assert len(set(PIPELINE_STAGES)) == len(PIPELINE_STAGES)
    with pytest.raises(ConfigError, match="pipeline.stages"):
        load_config(overrides={"pipeline.stages": "[prepare, publish]"})
    subcommands = next(a for a in build_parser()._actions if isinstance(a, argparse._SubParsersAction))
    assert list(subcommands.choices) == [c.name for c in COMMANDS]
    assert command("tune").module == "mmrec.tune.run"
    with pytest.raises(KeyError, match="no stage 'publish'"):
        command("publish")


@pytest.mark.parametrize("stage", STAGES, ids=lambda s: s.name)
def test_every_stage_runs_and_summarises_from_a_config(stage):
    for function in (stage.run, stage.summary):
        assert list(inspect.signature(function).parameters) == ["config"], function


@pytest.mark.parametrize("stage", STAGES, ids=lambda s: s.name)
def test_a_stage_help_shows_every_setting_the_stage_reads(stage):
    package = PACKAGE / stage.module.split(".")[1]
    read = settings_read(package)
    assert read, f"found no settings read in {package}"
    missing = {r for r in read if r.split(".")[0] not in stage.reads and r not in stage.reads}
    assert not missing, f"{stage.name} reads {sorted(missing)} but its --help does not show them"
    subcommands = next(a for a in build_parser()._actions if isinstance(a, argparse._SubParsersAction))
    shown = {a.dest for a in subcommands.choices[stage.name]._actions}
    assert "artifact_root" in shown  # every stage reads the root
    for key, *_ in config_fields(MMRecConfig)[1:]:
        wanted = key.split(".")[0] in stage.reads or key in stage.reads
        assert (key in shown) == wanted, key
