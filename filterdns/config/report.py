"""`report:` the language and footer of the reports parents and teachers read."""

from __future__ import annotations

from dataclasses import dataclass

from filterdns.config.fragments import enum
from filterdns.config.readers import ConfigReader, Key, Section
from filterdns.config.walker import Node, is_null
from filterdns.querylog.translations import languages

REPORT_LANGUAGES = languages()  # the report catalogues: querylog/locale/<lang>.toml


@dataclass(frozen=True, slots=True)
class ReportConfig:
    """`report:` the language and footer of the reports parents and teachers read."""

    lang: str = "en"  # one of REPORT_LANGUAGES
    footer: str = ""  # e.g. where to report harmful content (a national child-protection line)


def _language(r: ConfigReader, node: Node, path: str) -> str | None:
    return r.choice(node, path, REPORT_LANGUAGES)


def _footer(r: ConfigReader, node: Node, path: str) -> str | None:
    return "" if is_null(node) else r.scalar(node, path, "a line of text")


SECTION = Section(
    "report",
    ReportConfig,
    "The language and footer of the reports parents and teachers read",
    (
        Key("lang", _language, enum("The language of reports", REPORT_LANGUAGES)),
        Key("footer", _footer, {
            "description": "A line at the bottom of every report",
            "type": ["string", "null"],
        }),
    ),
)  # fmt: skip
