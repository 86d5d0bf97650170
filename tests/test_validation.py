"""What HACS and hassfest check, offline: manifest, hacs.json, actions, icons, quality scale.

Their rules, as tests (neither tool runs without the network or Home Assistant's source tree):
the manifest's keys, order and version, imports declared as requirements, hacs.json's keys,
the actions Home Assistant really registers against ``services.yaml`` and their strings and
icons, entity icons against the entities the code describes, and the ``quality_scale.yaml``
rules marked done that a test can check against the code.
"""

from __future__ import annotations

import ast
from collections.abc import Callable
import importlib.metadata
import json
from pathlib import Path
import re
import sys
from typing import Any

from awesomeversion import AwesomeVersion, AwesomeVersionStrategy
from homeassistant import components
from homeassistant.const import __version__ as ha_version
from homeassistant.core import HomeAssistant
from homeassistant.setup import async_setup_component
import pytest
import voluptuous as vol
import yaml

from custom_components.whatsapp_presence.const import DOMAIN
from custom_components.whatsapp_presence.pairing import NEONIZE_REQUIREMENT

from .code_strings import PACKAGE, integration_modules
from .translation_keys import PRODUCED, STRINGS

ROOT = PACKAGE.parents[1]
MANIFEST: dict[str, Any] = json.loads((PACKAGE / "manifest.json").read_text("utf-8"))
HACS: dict[str, Any] = json.loads((ROOT / "hacs.json").read_text("utf-8"))
SERVICES_YAML: dict[str, Any] = yaml.safe_load((PACKAGE / "services.yaml").read_text("utf-8"))
ICONS: dict[str, Any] = json.loads((PACKAGE / "icons.json").read_text("utf-8"))
QUALITY: dict[str, Any] = yaml.safe_load((PACKAGE / "quality_scale.yaml").read_text("utf-8"))

# hassfest's manifest schema for custom integrations (script/hassfest/manifest.py).
MANIFEST_KEYS = {
    "domain", "name", "after_dependencies", "bluetooth", "codeowners", "config_flow",
    "dependencies", "dhcp", "disabled", "documentation", "homekit", "import_executor",
    "integration_type", "iot_class", "issue_tracker", "loggers", "mqtt", "quality_scale",
    "requirements", "single_config_entry", "ssdp", "usb", "version", "zeroconf",
}  # fmt: skip
# hassfest (custom integrations) and HACS both require these.
MANIFEST_REQUIRED = {"domain", "name", "codeowners", "documentation", "issue_tracker", "version"}
IOT_CLASSES = {
    "assumed_state", "calculated", "cloud_polling", "cloud_push", "local_polling", "local_push",
}  # fmt: skip
INTEGRATION_TYPES = {"device", "entity", "hardware", "helper", "hub", "service", "system"}
# HACS's hacs.json schema (hacs/utils/validate.py).
HACS_KEYS = {
    "name", "content_in_root", "zip_release", "filename", "hide_default_branch", "country",
    "homeassistant", "hacs", "persistent_directory", "render_readme",
}  # fmt: skip


def test_manifest_keys_order_and_values() -> None:
    """Known keys, the required ones, hassfest's order (domain, name, then by name)."""
    keys = list(MANIFEST)
    assert set(keys) <= MANIFEST_KEYS, set(keys) - MANIFEST_KEYS
    assert set(keys) >= MANIFEST_REQUIRED, MANIFEST_REQUIRED - set(keys)
    assert keys == ["domain", "name", *sorted(keys[2:])]
    assert PACKAGE.name == MANIFEST["domain"]
    assert PACKAGE.name == DOMAIN
    assert MANIFEST["iot_class"] in IOT_CLASSES
    assert MANIFEST["integration_type"] in INTEGRATION_TYPES
    assert MANIFEST["config_flow"] is (PACKAGE / "config_flow.py").is_file()
    assert all(re.fullmatch(r"@[\w-]+(/[\w-]+)?", owner) for owner in MANIFEST["codeowners"])
    assert MANIFEST["documentation"].startswith("https://")
    assert MANIFEST["issue_tracker"].startswith("https://")
    assert MANIFEST["loggers"] == [f"custom_components.{DOMAIN}"]


def test_manifest_version_is_valid() -> None:
    """hassfest refuses a custom integration whose version AwesomeVersion cannot read."""
    version = AwesomeVersion(MANIFEST["version"])
    assert version.strategy in {
        AwesomeVersionStrategy.CALVER,
        AwesomeVersionStrategy.SEMVER,
        AwesomeVersionStrategy.SIMPLEVER,
        AwesomeVersionStrategy.BUILDVER,
        AwesomeVersionStrategy.PEP440,
    }, version.strategy


def _third_party_imports(paths: list[Path]) -> dict[str, str]:
    """Top-level modules imported (anywhere in the code) outside the stdlib and this package."""
    found: dict[str, str] = {}
    for path in paths:
        tree = ast.parse(path.read_text("utf-8"))
        typing_only = {
            id(child)
            for node in ast.walk(tree)
            if isinstance(node, ast.If) and ast.unparse(node.test) == "TYPE_CHECKING"
            for child in ast.walk(node)
        }
        for node in ast.walk(tree):
            if id(node) in typing_only:
                continue  # read by type checkers only
            names: list[str] = []
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                names = [node.module]
            for name in names:
                top = name.split(".")[0]
                if top not in sys.stdlib_module_names and top != "custom_components":
                    found.setdefault(top, f"{path.relative_to(ROOT)}:{getattr(node, 'lineno', 0)}")
    return found


def _distribution_names(requirements: list[str]) -> set[str]:
    return {
        re.split(r"[<>=!~;\[ ]", r, maxsplit=1)[0].lower().replace("_", "-") for r in requirements
    }


def _core_requirements() -> set[str]:
    """What Home Assistant brings: its own requirements, and those of the integrations the
    manifest names as (after) dependencies (imported only once they are loaded)."""
    names = _distribution_names(
        [r for r in importlib.metadata.requires("homeassistant") or [] if "extra ==" not in r]
    ) | {"homeassistant"}
    for domain in MANIFEST.get("dependencies", []) + MANIFEST.get("after_dependencies", []):
        manifest = Path(components.__file__).parent / domain / "manifest.json"
        names |= _distribution_names(
            json.loads(manifest.read_text("utf-8")).get("requirements", [])
        )
    return names


@pytest.mark.parametrize(
    ("where", "declared"),
    [
        # Home Assistant imports these modules: the manifest declares what they need.
        ("integration", MANIFEST["requirements"]),
        # The bridge runs apart; on a Home Assistant host it gets neonize from pairing.py.
        ("bridge", [NEONIZE_REQUIREMENT]),
    ],
)
def test_no_undeclared_requirements(where: str, declared: list[str]) -> None:
    """Every third-party import comes with Home Assistant or is declared."""
    if where == "bridge":
        paths = sorted((PACKAGE / "bridge").glob("*.py"))
    else:
        paths = [module.path for module in integration_modules()]
    distributions = importlib.metadata.packages_distributions()
    allowed = _core_requirements() | _distribution_names(declared)
    undeclared = {
        module: where_
        for module, where_ in _third_party_imports(paths).items()
        if not {d.lower().replace("_", "-") for d in distributions.get(module, [module])} & allowed
    }
    assert undeclared == {}


def test_hacs_json() -> None:
    """Only keys HACS knows; the minimum Home Assistant is a release this project supports."""
    assert set(HACS) <= HACS_KEYS, set(HACS) - HACS_KEYS
    assert HACS["name"] == MANIFEST["name"]
    assert AwesomeVersion(HACS["homeassistant"]) <= AwesomeVersion(ha_version)
    assert (ROOT / "custom_components" / DOMAIN / "manifest.json").is_file()  # HACS's layout


async def test_services_yaml_matches_the_registered_actions(hass: HomeAssistant) -> None:
    """hassfest's services check, on the actions Home Assistant really registers."""
    assert await async_setup_component(hass, DOMAIN, {})
    registered = hass.services.async_services_for_domain(DOMAIN)
    assert set(registered) == set(SERVICES_YAML)
    for name, service in registered.items():
        assert isinstance(service.schema, vol.Schema), name
        schema_fields = {str(key): key for key in service.schema.schema}
        yaml_fields: dict[str, Any] = SERVICES_YAML[name].get("fields") or {}
        assert set(yaml_fields) == set(schema_fields), name
        for field_name, spec in yaml_fields.items():
            required = isinstance(schema_fields[field_name], vol.Required)
            assert bool(spec.get("required", False)) is required, (name, field_name)
            assert "selector" in spec, (name, field_name)
        # Names and descriptions come from the translations, never from services.yaml.
        assert "name" not in SERVICES_YAML[name]
        assert "description" not in SERVICES_YAML[name]
        strings = STRINGS["services"][name]
        assert strings["name"]
        assert strings["description"]
        for field_name in yaml_fields:
            assert strings["fields"][field_name]["name"], (name, field_name)
            assert strings["fields"][field_name]["description"], (name, field_name)
    assert set(STRINGS["services"]) == set(registered)
    assert set(ICONS["services"]) == set(registered)
    assert all(ICONS["services"][name].get("service", "").startswith("mdi:") for name in registered)


def test_icons_json_matches_the_entities() -> None:
    """Icons only for entity translation keys the code describes (a device class gives the
    others theirs), valid icons and states."""
    described = {key.split(".", 1)[1] for key in PRODUCED if key.startswith("entity.")}
    iconed = {f"{platform}.{key}" for platform, keys in ICONS["entity"].items() for key in keys}
    assert iconed <= described, iconed - described
    assert len(iconed) >= len(described) - 2, described - iconed
    for platform, keys in ICONS["entity"].items():
        for key, icon in keys.items():
            assert icon["default"].startswith("mdi:"), (platform, key)
            states = icon.get("state", {})
            assert all(value.startswith("mdi:") for value in states.values()), (platform, key)
            if platform == "binary_sensor":
                assert set(states) <= {"on", "off"}, (platform, key)


# ---------------------------------------------------------------- quality scale


def _source(name: str) -> str:
    return (PACKAGE / name).read_text("utf-8")


def _functions(name: str) -> dict[str, ast.AST]:
    tree = ast.parse(_source(name))
    return {
        node.name: node
        for node in ast.walk(tree)
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef)
    }


def _calls_in(node: ast.AST) -> set[str]:
    return {
        call.func.attr if isinstance(call.func, ast.Attribute) else getattr(call.func, "id", "")
        for call in ast.walk(node)
        if isinstance(call, ast.Call)
    }


def _platform_modules() -> list[str]:
    return [
        f"{p}.py"
        for p in ("sensor", "binary_sensor", "switch", "button", "select", "number")
        if (PACKAGE / f"{p}.py").is_file()
    ]


def _action_setup() -> None:
    """Actions registered in async_setup, never per entry."""
    functions = _functions("__init__.py")
    assert "async_setup_services" in _calls_in(functions["async_setup"])
    assert "async_setup_services" not in _calls_in(functions["async_setup_entry"])
    assert "async_register" not in _calls_in(functions["async_setup_entry"])


def _entity_translations() -> None:
    """Every entity description has a translation key with a name; entities use them."""
    for module in _platform_modules():
        for call in ast.walk(ast.parse(_source(module))):
            if isinstance(call, ast.Call) and getattr(call.func, "id", "").endswith("Description"):
                keys = {kw.arg for kw in call.keywords}
                assert "translation_key" in keys or "key" not in keys, (module, call.lineno)
                assert "name" not in keys, (module, call.lineno)
    for key in (k for k in PRODUCED if k.startswith("entity.")):
        _, platform, name = key.split(".")
        assert STRINGS["entity"][platform][name]["name"], key


def _has_entity_name() -> None:
    assert re.search(r"^\s+_attr_has_entity_name = True$", _source("entity.py"), re.MULTILINE)


def _diagnostics() -> None:
    """Diagnostics exist and go through async_redact_data."""
    functions = _functions("diagnostics.py")
    assert "async_get_config_entry_diagnostics" in functions
    assert "async_redact_data" in _calls_in(ast.parse(_source("diagnostics.py")))


def _reauthentication_flow() -> None:
    functions = _functions("config_flow.py")
    assert {"async_step_reauth", "async_step_reauth_confirm"} <= set(functions)
    assert "async_start_reauth" in _source("coordinator.py") or "ConfigEntryAuthFailed" in _source(
        "coordinator.py"
    )


def _reconfiguration_flow() -> None:
    assert "async_step_reconfigure" in _functions("config_flow.py")


def _config_entry_unloading() -> None:
    assert "async_unload_entry" in _functions("__init__.py")


def _runtime_data() -> None:
    assert "entry.runtime_data = " in _source("__init__.py")
    assert re.search(r"^type \w+ = ConfigEntry\[", _source("coordinator.py"), re.MULTILINE)


def _parallel_updates() -> None:
    for module in _platform_modules():
        assert re.search(r"^PARALLEL_UPDATES = \d+$", _source(module), re.MULTILINE), module


def _unique_config_entry() -> None:
    assert "async_set_unique_id" in _calls_in(ast.parse(_source("config_flow.py")))


def _config_flow() -> None:
    assert MANIFEST["config_flow"] is True
    assert "async_step_user" in _functions("config_flow.py")


def _discovery() -> None:
    assert "async_step_hassio" in _functions("config_flow.py")


def _exception_translations() -> None:
    """Every Home Assistant exception raised by the integration carries a translation key."""
    for module in integration_modules():
        for node in ast.walk(module.tree):
            if isinstance(node, ast.Raise) and isinstance(node.exc, ast.Call):
                name = getattr(node.exc.func, "id", "")
                if name in {
                    "HomeAssistantError",
                    "ServiceValidationError",
                    "ConfigEntryNotReady",
                    "ConfigEntryAuthFailed",
                    "ConfigEntryError",
                }:
                    keys = {kw.arg for kw in node.exc.keywords}
                    assert "translation_key" in keys, module.where(node)


def _icon_translations() -> None:
    assert ICONS["entity"]
    assert "icon=" not in "".join(_source(m) for m in _platform_modules())


def _brands() -> None:
    assert (PACKAGE / "brand" / "icon.png").is_file()


CHECKS: dict[str, Callable[[], None]] = {
    "action-setup": _action_setup,
    "brands": _brands,
    "config-entry-unloading": _config_entry_unloading,
    "config-flow": _config_flow,
    "diagnostics": _diagnostics,
    "discovery": _discovery,
    "entity-translations": _entity_translations,
    "exception-translations": _exception_translations,
    "has-entity-name": _has_entity_name,
    "icon-translations": _icon_translations,
    "parallel-updates": _parallel_updates,
    "reauthentication-flow": _reauthentication_flow,
    "reconfiguration-flow": _reconfiguration_flow,
    "runtime-data": _runtime_data,
    "unique-config-entry": _unique_config_entry,
}


def _done(rule: Any) -> bool:
    return (rule if isinstance(rule, str) else rule.get("status")) == "done"


DONE = sorted(name for name, rule in QUALITY["rules"].items() if _done(rule) and name in CHECKS)


def test_quality_scale_claims_are_checked() -> None:
    """Most checkable rules are claimed done (the parametrized test below then checks them)."""
    assert len(DONE) >= 12, DONE


@pytest.mark.parametrize("rule", DONE)
def test_quality_scale_rule_done(rule: str) -> None:
    """A rule quality_scale.yaml marks done holds in the code."""
    CHECKS[rule]()
