"""``docs/topics.md``: every MQTT topic, its payload fields with units and its parser,
generated from the domain descriptors (``python -m its.app.topics_doc > docs/topics.md``).

A test fails when the file in the repository differs from what this prints, so the topic
contract cannot drift from the code.
"""

from __future__ import annotations

from its.app.registry import domains, topics
from its.domain import Topic

__all__ = ["topics_markdown"]


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def _topic_section(owner: str, topic: Topic, consumers: list[str]) -> list[str]:
    parser = f"`{topic.parse.__module__}.{topic.parse.__name__}`" if topic.parse is not None else "none (not stored)"
    lines = [f"### `{topic.filter}`", "", _cell(topic.summary), "",
             f"- owner: `{owner}`; published by: {topic.publisher}"
             + ("; broker ACL: the API's `platform` account writes it" if topic.from_platform else ""),
             f"- payload: {topic.payload}{' (retained)' if topic.retained else ''}; parser: {parser}",
             f"- stored in: `{topic.stored_in}`" if topic.stored_in else "- stored in: nothing (live only)",
             f"- live consumers: {', '.join(f'`{c}`' for c in consumers) or 'none'}", ""]
    if topic.fields:
        lines += ["| field | type, unit | meaning | required |", "|---|---|---|---|"]
        lines += [f"| `{f.name}` | {_cell(f.kind)} | {_cell(f.meaning)} | {'yes' if f.required else 'no'} |"
                  for f in topic.fields]
        lines.append("")
    return lines


def topics_markdown() -> str:
    """The whole ``docs/topics.md`` text."""
    lines = ["# MQTT topics", "",
             "Generated from the domain descriptors by `python -m its.app.topics_doc > docs/topics.md`;",
             "do not edit by hand (a test fails when this file is stale). `+` is one topic level.",
             "A message is parsed by its topic's one parser everywhere: the collector stores what it",
             "accepts and dead-letters the rest (`rejected_messages`, with the reason), and live",
             "services ignore what it refuses.", ""]
    registered = domains()
    for owner, topic in topics():
        consumers = [d.name for d in registered if any(topic.matches(f) for f in d.live_topics)]
        lines += _topic_section(owner, topic, consumers)
    return "\n".join(lines).rstrip() + "\n"


if __name__ == "__main__":
    print(topics_markdown(), end="")
