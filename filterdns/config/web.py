"""`web:` the web app for parents and teachers (and its JSON API), off unless `listen` is set."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from filterdns.config.fragments import enum
from filterdns.config.readers import ConfigReader, Key, Section, duration_key
from filterdns.config.values import ListenAddress, parse_listen
from filterdns.config.walker import Node
from filterdns.querylog.translations import languages

WEB_LANGUAGES = languages()  # the same catalogues as the reports: querylog/locale/<lang>.toml
WEEK = 7 * 86400.0


@dataclass(frozen=True, slots=True)
class WebConfig:
    """`web:` where the web app listens, its language, its certificate and its block page."""

    listen: ListenAddress | None = None  # e.g. 0.0.0.0:8080; None: no web app
    language: str = "vi"  # what a browser that asks for neither of ours is shown
    tls_cert: Path | None = None  # HTTPS with this certificate chain (PEM) and key
    tls_key: Path | None = None
    # Where blocked sites answered with `blocking.response: custom` land: plain HTTP, port 80
    # of the address in custom_ips (HTTPS sites cannot show it: the box has no certificate of
    # theirs). None: no block page.
    block_page: ListenAddress | None = None
    session_lifetime: float = WEEK  # a login lasts this long on a phone


def _listen(r: ConfigReader, node: Node, path: str) -> ListenAddress | None:
    return r.one(node, path, "an address and port like 0.0.0.0:8080", parse_listen)


def _language(r: ConfigReader, node: Node, path: str) -> str | None:
    return r.choice(node, path, WEB_LANGUAGES)


def _check(r: ConfigReader, found: Mapping[str, Node], web: WebConfig) -> WebConfig:
    """A certificate needs its key and the other way round."""
    if (web.tls_cert is None) != (web.tls_key is None):
        given = "tls_cert" if web.tls_cert is not None else "tls_key"
        missing = "tls_key" if given == "tls_cert" else "tls_cert"
        r.problem(found[given], f"web.{given}", f"needs web.{missing} too (HTTPS needs both)")
    return web


_LISTEN_SCHEMA = {"type": ["string", "null"], "examples": ["0.0.0.0:8080", "[::]:8080"]}

SECTION = Section(
    "web",
    WebConfig,
    "The web app for parents and teachers, and its JSON API (off unless listen is set)",
    (
        Key("listen", _listen, {
            **_LISTEN_SCHEMA,
            "description": 'Where the web app listens, e.g. "0.0.0.0:8080"; null: off',
        }, nullable=True),
        Key("language", _language, enum(
            "The language shown when the browser asks for none of ours", WEB_LANGUAGES
        )),
        Key("tls_cert", ConfigReader.file, {
            "type": ["string", "null"],
            "description": "HTTPS: the certificate chain (PEM file); with tls_key; null: HTTP",
        }, nullable=True),
        Key("tls_key", ConfigReader.file, {
            "type": ["string", "null"],
            "description": "HTTPS: the private key (PEM file); with tls_cert",
        }, nullable=True),
        Key("block_page", _listen, {
            "type": ["string", "null"],
            "examples": ["0.0.0.0:80"],
            "description": "Plain HTTP block page for blocking.response custom (port 80 of the "
            "custom_ips address); null: off",
        }, nullable=True),
        duration_key("session_lifetime", "How long a login lasts", positive=True),
    ),
    _check,
)  # fmt: skip
