"""``[tool.advisor]`` in pyproject.toml: select / ignore / per-rule thresholds, found from the
working directory upwards; how a threshold reaches a rule through ``RuleContext.option``;
and every way the table can be wrong is a one-line ``UsageError``."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from advisor.config import Settings, find_pyproject, load_settings
from advisor.engine import select_rules
from advisor.errors import UsageError
from advisor.profile import Report, RunInfo
from advisor.rules.base import RuleContext
from advisor.rules.concurrency.blocking_sleep import BlockingSleepRule
from advisor.rules.io.blocking_io import BlockingIoRule

FULL = """\
[project]
name = "someone-elses-app"

[tool.ruff]
line-length = 100

[tool.advisor]
select = ["blocking-sleep", "ADV2"]
ignore = ["excess-logging"]

[tool.advisor.blocking-sleep]
min_blocked_s = 0.5
script_share = 1

[tool.advisor.cacheable-function]
min_calls = 500
"""

TOOL_NOT_A_TABLE = ("config.load_settings calls .get on document['tool'] without checking it is a table: "
                    "`tool = \"x\"` raises AttributeError (a traceback, exit 1)")
UNCHECKED_THRESHOLDS = ("per-rule tables are never checked against the rules: a misspelt threshold or rule slug "
                        "under [tool.advisor.<slug>] is silently ignored")


def write(folder: Path, text: str) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "pyproject.toml"
    path.write_text(textwrap.dedent(text), encoding="utf-8")
    return path


def usage_error(folder: Path) -> str:
    with pytest.raises(UsageError) as raised:
        load_settings(folder)
    message = str(raised.value)
    assert "\n" not in message, message
    assert str(folder / "pyproject.toml") in message, message
    return message


def context(settings: Settings) -> RuleContext:
    run = RunInfo(argv=["app.py"], python="3.11.7", cpu_count=2, started_at="2026-11-25T08:00:00Z", wall_s=1.0,
                  cpu_s=0.1, exit_code=0)
    return RuleContext(Report(run=run), settings.options)


# --- reading ---------------------------------------------------------------------------------------------------------


def test_select_ignore_and_thresholds_are_read(tmp_path: Path) -> None:
    path = write(tmp_path, FULL)
    settings = load_settings(tmp_path)
    assert settings.select == ["blocking-sleep", "ADV2"]
    assert settings.ignore == ["excess-logging"]
    assert settings.options == {"blocking-sleep": {"min_blocked_s": 0.5, "script_share": 1.0},
                                "cacheable-function": {"min_calls": 500.0}}
    assert all(isinstance(value, float) for table in settings.options.values() for value in table.values())
    assert settings.source == str(path)


def test_the_file_is_found_from_a_subdirectory_upwards(tmp_path: Path) -> None:
    path = write(tmp_path, FULL)
    deep = tmp_path / "src" / "pkg" / "sub"
    deep.mkdir(parents=True)
    assert find_pyproject(deep) == path
    settings = load_settings(deep)
    assert settings.select == ["blocking-sleep", "ADV2"]
    assert settings.source == str(path)


def test_the_working_directory_is_the_default_start(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    write(tmp_path, FULL)
    (tmp_path / "app").mkdir()
    monkeypatch.chdir(tmp_path / "app")
    assert load_settings().ignore == ["excess-logging"]


def test_the_nearest_pyproject_is_the_projects_even_without_a_table(tmp_path: Path) -> None:
    write(tmp_path, FULL)
    inner = write(tmp_path / "inner", '[project]\nname = "inner"\n')
    settings = load_settings(tmp_path / "inner")
    assert (settings.select, settings.ignore, settings.options) == ([], [], {})
    assert settings.source == str(inner)


def test_no_pyproject_gives_the_defaults(tmp_path: Path) -> None:
    if find_pyproject(tmp_path) is not None:
        pytest.skip("a pyproject.toml above the temp directory")
    settings = load_settings(tmp_path)
    assert settings == Settings()


def test_an_empty_table_gives_the_defaults(tmp_path: Path) -> None:
    write(tmp_path, "[tool.advisor]\n")
    settings = load_settings(tmp_path)
    assert (settings.select, settings.ignore, settings.options) == ([], [], {})


def test_settings_feed_rule_selection(tmp_path: Path) -> None:
    write(tmp_path, FULL)
    chosen = {rule.slug for rule in select_rules(load_settings(tmp_path))}
    assert "blocking-sleep" in chosen and "blocking-io" in chosen
    assert "excess-logging" not in chosen
    assert all(rule.code.startswith("ADV2") or rule.slug == "blocking-sleep"
               for rule in select_rules(load_settings(tmp_path)))


def test_unknown_rule_names_in_the_file_fail_at_selection(tmp_path: Path) -> None:
    write(tmp_path, '[tool.advisor]\nignore = ["no-such-rule"]\n')
    settings = load_settings(tmp_path)
    with pytest.raises(UsageError, match="no-such-rule"):
        select_rules(settings)


# --- RuleContext.option ----------------------------------------------------------------------------------------------


def test_a_configured_threshold_overrides_the_rule_default(tmp_path: Path) -> None:
    write(tmp_path, FULL)
    rules = context(load_settings(tmp_path))
    assert rules.option(BlockingSleepRule(), "min_blocked_s") == 0.5
    assert rules.option(BlockingSleepRule(), "script_share") == 1.0


def test_an_unconfigured_threshold_is_the_rule_default(tmp_path: Path) -> None:
    write(tmp_path, "[tool.advisor.blocking-sleep]\nmin_blocked_s = 0.5\n")
    rules = context(load_settings(tmp_path))
    assert rules.option(BlockingSleepRule(), "script_share") == BlockingSleepRule.defaults["script_share"]
    # another rule with a threshold of the same name keeps its own default
    assert rules.option(BlockingIoRule(), "min_blocked_s") == BlockingIoRule.defaults["min_blocked_s"]


def test_no_settings_means_every_default() -> None:
    rules = context(Settings())
    for name, value in BlockingSleepRule.defaults.items():
        assert rules.option(BlockingSleepRule(), name) == value


# --- errors ----------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("text", [
    "[tool.advisor\nselect = []\n",  # unclosed table header
    "[tool.advisor]\nselect = [\"a\"\n",  # unclosed array
    "[tool.advisor]\nselect = [\"a\"]\nselect = [\"b\"]\n",  # duplicate key
    "not toml at all",
])
def test_malformed_toml_is_a_one_line_usage_error(tmp_path: Path, text: str) -> None:
    write(tmp_path, text)
    assert "cannot read" in usage_error(tmp_path)


def test_an_undecodable_file_is_a_one_line_usage_error(tmp_path: Path) -> None:
    (tmp_path / "pyproject.toml").write_bytes(b"[tool.advisor]\nselect = [\"\xff\xfe\"]\n")
    usage_error(tmp_path)


@pytest.mark.parametrize(("text", "where"), [
    ('[tool.advisor]\nselect = "blocking-sleep"\n', "tool.advisor.select"),
    ("[tool.advisor]\nselect = [1, 2]\n", "tool.advisor.select"),
    ('[tool.advisor]\nignore = ["blocking-sleep", 3]\n', "tool.advisor.ignore"),
    ("[tool.advisor]\nignore = true\n", "tool.advisor.ignore"),
    ('[tool.advisor.blocking-sleep]\nmin_blocked_s = "0.5"\n', "tool.advisor.blocking-sleep.min_blocked_s"),
    ("[tool.advisor.blocking-sleep]\nmin_blocked_s = true\n", "tool.advisor.blocking-sleep.min_blocked_s"),
    ("[tool.advisor.blocking-sleep]\nmin_blocked_s = [1]\n", "tool.advisor.blocking-sleep.min_blocked_s"),
    ("[tool]\nadvisor = 3\n", "[tool.advisor]"),
    ('[tool]\nadvisor = ["x"]\n', "[tool.advisor]"),
])
def test_wrong_types_are_a_one_line_usage_error(tmp_path: Path, text: str, where: str) -> None:
    write(tmp_path, text)
    assert where in usage_error(tmp_path)


@pytest.mark.parametrize("text", [
    "[tool.advisor]\nfoo = 1\n",
    '[tool.advisor]\nselects = ["blocking-sleep"]\n',
    '[tool.advisor]\nmode = "deep"\n',
])
def test_an_unknown_setting_is_a_one_line_usage_error(tmp_path: Path, text: str) -> None:
    write(tmp_path, text)
    message = usage_error(tmp_path)
    assert "unknown setting" in message


@pytest.mark.parametrize("text", ['tool = "x"\n', "tool = 3\n"], ids=["string", "number"])
def test_a_tool_key_that_is_not_a_table_is_a_usage_error(tmp_path: Path, text: str) -> None:
    write(tmp_path, text)
    usage_error(tmp_path)


@pytest.mark.parametrize("text", [
    "[tool.advisor.blocking-sleep]\nmin_blockd_s = 0.5\n",  # a typo in the threshold's name
    "[tool.advisor.blocking-slep]\nmin_blocked_s = 0.5\n",  # a typo in the rule's slug
], ids=["threshold", "slug"])
def test_a_misspelt_threshold_is_reported(tmp_path: Path, text: str) -> None:
    write(tmp_path, text)
    with pytest.raises(UsageError):
        select_rules(load_settings(tmp_path))
