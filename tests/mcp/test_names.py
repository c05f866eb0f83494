"""Model-safe tool names: normalisation, the `{server}__{tool}` prefix, and the listing's way back."""

from __future__ import annotations

import hashlib
import re

import pytest

from relaygate.mcp.names import ToolNameCollision, ToolNames, normalise_tool_name, prefixed_tool_name

MODEL_SAFE = re.compile(r"^[A-Za-z0-9_-]{1,64}$")


def test_a_safe_name_is_unchanged() -> None:
    assert normalise_tool_name("search_issues") == "search_issues"
    assert normalise_tool_name("a-B_9") == "a-B_9"


def test_characters_outside_the_model_alphabet_become_underscores() -> None:
    assert normalise_tool_name("files.read") == "files_read"
    assert normalise_tool_name("ns/tool:v2 ü") == "ns_tool_v2__"


def test_a_64_character_name_is_kept_and_a_65_character_one_is_hashed() -> None:
    exactly = "t" * 64
    assert normalise_tool_name(exactly) == exactly
    longer = "t" * 65
    digest = hashlib.sha256(longer.encode()).hexdigest()[:8]
    assert normalise_tool_name(longer) == "t" * 55 + "_" + digest


def test_a_long_name_keeps_55_characters_an_underscore_and_8_hex_of_the_original() -> None:
    original = "server__" + "very.long.tool.name." * 5  # 108 characters, dotted
    name = normalise_tool_name(original)
    assert len(name) == 64 and MODEL_SAFE.match(name)
    assert name[:55] == original.replace(".", "_")[:55]
    assert name[55:] == "_" + hashlib.sha256(original.encode()).hexdigest()[:8]


def test_two_long_names_differing_only_past_the_cut_stay_distinct() -> None:
    a, b = "x" * 70 + ".a", "x" * 70 + ".b"
    assert normalise_tool_name(a) != normalise_tool_name(b)


def test_the_hash_is_of_the_original_so_dot_and_underscore_spellings_differ_when_long() -> None:
    dotted, underscored = "a." * 40, "a_" * 40
    assert normalise_tool_name(dotted) != normalise_tool_name(underscored)


def test_prefixed_names_are_server_double_underscore_tool_normalised() -> None:
    assert prefixed_tool_name("github", "search_issues") == "github__search_issues"
    assert prefixed_tool_name("jira", "issue.get") == "jira__issue_get"
    long_tool = "t" * 100
    name = prefixed_tool_name("github", long_tool)
    assert MODEL_SAFE.match(name) and name.startswith("github__ttt")


def test_a_100_character_tool_round_trips_through_the_map() -> None:
    tool = "a" * 50 + "." + "b" * 49
    assert len(tool) == 100
    names = ToolNames()
    listed = names.add("github", tool)
    assert MODEL_SAFE.match(listed)
    assert names.resolve(listed) == ("github", tool)
    assert names.name_of("github", tool) == listed
    assert listed == prefixed_tool_name("github", tool)  # what another replica recomputes


def test_dotted_names_round_trip_through_the_map_on_several_servers() -> None:
    names = ToolNames()
    listed = [names.add("github", "issues.search"), names.add("jira", "issues.search"), names.add("jira", "ping")]
    assert listed == ["github__issues_search", "jira__issues_search", "jira__ping"]
    assert [names.resolve(n) for n in listed] == [
        ("github", "issues.search"),
        ("jira", "issues.search"),
        ("jira", "ping"),
    ]
    assert len(names) == 3 and "jira__ping" in names


def test_an_unlisted_or_guessed_name_resolves_to_nothing() -> None:
    names = ToolNames()
    names.add("github", "search")
    assert names.resolve("github__delete") is None
    assert names.resolve("github__search.") is None


def test_adding_the_same_tool_again_returns_its_name() -> None:
    names = ToolNames()
    assert names.add("github", "a.b") == names.add("github", "a.b") == "github__a_b"
    assert len(names) == 1


def test_a_collision_is_refused_naming_both_tools() -> None:
    names = ToolNames()
    names.add("github", "a.b")
    with pytest.raises(ToolNameCollision) as caught:
        names.add("github", "a_b")
    error = caught.value
    assert error.name == "github__a_b"
    assert error.first == ("github", "a.b") and error.second == ("github", "a_b")
    assert "github/a.b" in str(error) and "github/a_b" in str(error)
    assert names.resolve("github__a_b") == ("github", "a.b")  # the first keeps its name


def test_a_server_and_tool_split_differently_collide() -> None:
    names = ToolNames()
    names.add("a", "b__c")
    with pytest.raises(ToolNameCollision):
        names.add("a__b", "c")


def test_unprefixed_listing_normalises_the_tool_name_alone() -> None:
    names = ToolNames(prefixed=False)
    assert names.add("github", "issues.search") == "issues_search"
    assert names.resolve("issues_search") == ("github", "issues.search")
    with pytest.raises(ToolNameCollision):
        names.add("github", "issues_search")
