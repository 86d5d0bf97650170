#!/usr/bin/env bashio
# shellcheck shell=bash
# ==============================================================================
# WhatsApp Presence Bridge: start the bridge (python -m bridge) on one WhatsApp session.
#
# Add-on mode (the Supervisor sets SUPERVISOR_TOKEN): options come from the add-on
# configuration, the token is generated on first start and kept in /data/token, and once the
# bridge listens its address and token are announced to Home Assistant (discovery service
# "whatsapp_presence"), where the integration offers it with one click.
# Plain container mode (no Supervisor): options come from environment variables (DOCS.md).
#
# Extra arguments are passed to the bridge. The BRIDGE_* variables below also let the test
# suite run this very script from a copy of the add-on folder (tests/addon).
# ==============================================================================

readonly APP_DIR="${BRIDGE_APP_DIR:-/opt/app}"
readonly PYTHON="${BRIDGE_PYTHON:-/opt/venv/bin/python}"
readonly DATA_DIR="${BRIDGE_DATA_DIR:-/data}"
readonly BACKEND="${BRIDGE_BACKEND:-neonize}"
readonly LISTEN_HOST="${BRIDGE_HOST:-0.0.0.0}"
readonly PORT="${BRIDGE_PORT:-8765}"
readonly TOKEN_FILE="${DATA_DIR}/token"
readonly SESSION_DIR="${DATA_DIR}/session"
readonly DISCOVERY_SERVICE="whatsapp_presence"
# The unprivileged user the bridge runs as (created in the image); empty runs it as is.
readonly RUN_AS="${BRIDGE_USER-bridge}"

# Write a secret to a file only its owner can read (0600), atomically.
write_secret() {
    local file="$1" value="$2" tmp
    tmp="$(mktemp "${file}.XXXXXX")"
    chmod 600 "${tmp}"
    printf '%s\n' "${value}" > "${tmp}"
    mv -f "${tmp}" "${file}"
}

# The token in /data/token: the configured one if set, else the one from an earlier start,
# else a new random one. It is never logged.
ensure_token() {
    local wanted="${1:-}"
    # A short token can be guessed; the same minimum as the integration's (MIN_TOKEN_LENGTH).
    if [[ -n "${wanted}" && "${#wanted}" -lt 32 ]]; then
        bashio::exit.nok "The configured token has ${#wanted} characters; use at least 32 (or leave it empty to use a generated one)"
    fi
    umask 077
    mkdir -p "${DATA_DIR}"
    if [[ -n "${wanted}" ]]; then
        if [[ ! -s "${TOKEN_FILE}" || "$(<"${TOKEN_FILE}")" != "${wanted}" ]]; then
            write_secret "${TOKEN_FILE}" "${wanted}"
        fi
    elif [[ ! -s "${TOKEN_FILE}" ]]; then
        write_secret "${TOKEN_FILE}" \
            "$("${PYTHON}" -c 'import secrets; print(secrets.token_urlsafe(32))')"
        bashio::log.info "Generated a new bridge token (${TOKEN_FILE})"
    fi
    chmod 600 "${TOKEN_FILE}"
}

if [[ -n "${SUPERVISOR_TOKEN:-}" ]]; then
    readonly ADDON=true
    log_level="$(bashio::config 'log_level')"
    device_name="$(bashio::config 'device_name')"
    configured_token=""
    if bashio::config.has_value 'token'; then
        configured_token="$(bashio::config 'token')"
    fi
    ensure_token "${configured_token}"
else
    readonly ADDON=false
    log_level="${BRIDGE_LOG_LEVEL:-info}"
    device_name="${BRIDGE_DEVICE_NAME:-Home Assistant}"
    # A token given as WHATSAPP_BRIDGE_TOKEN is kept like a configured one.
    ensure_token "${WHATSAPP_BRIDGE_TOKEN:-}"
fi
unset WHATSAPP_BRIDGE_TOKEN configured_token
# bashio itself never goes below info: at debug it logs Supervisor API traffic, the discovery
# message with the token included. The bridge's own level is the one chosen.
if [[ "${log_level}" == "debug" ]]; then
    bashio::log.level "info"
else
    bashio::log.level "${log_level}"
fi

mkdir -p "${SESSION_DIR}"
chmod 700 "${SESSION_DIR}"

# As root with the bridge's user present (the image): give it the session and the token, and
# run the bridge as that user. Elsewhere (a test tree, a custom image) it runs as is.
launcher=()
if [[ -n "${RUN_AS}" && "$(id -u)" == 0 ]] && id -u "${RUN_AS}" > /dev/null 2>&1; then
    chown -R "${RUN_AS}:" "${SESSION_DIR}" "${TOKEN_FILE}"
    chmod 711 "${DATA_DIR}"  # reachable, not listable: options.json stays root's
    launcher=(setpriv --reuid="${RUN_AS}" --regid="$(id -g "${RUN_AS}")" --init-groups --no-new-privs --)
elif [[ -n "${RUN_AS}" && "$(id -u)" == 0 ]]; then
    bashio::log.warning "No user ${RUN_AS} here: the bridge runs as root"
fi

args=(
    --backend "${BACKEND}"
    --host "${LISTEN_HOST}"
    --port "${PORT}"
    --token-file "${TOKEN_FILE}"
    --data-dir "${SESSION_DIR}"
    --log-level "${log_level^^}"
)
if [[ "${BACKEND}" == "neonize" ]]; then
    args+=(--device-name "${device_name}")
fi
args+=("$@")

readonly RESTART_EXIT_CODE=75  # the bridge asks for a fresh process (EX_TEMPFAIL)
readonly MAX_QUICK_RESTARTS=5  # within QUICK_RESTART_WINDOW seconds: give up, let the Supervisor act
readonly QUICK_RESTART_WINDOW=600

bashio::log.info "Starting the WhatsApp bridge (${BACKEND} backend) on port ${PORT}"
cd "${APP_DIR}" || bashio::exit.nok "No bridge in ${APP_DIR}"

stopping=false
bridge_pid=""
trap 'stopping=true; [[ -n "${bridge_pid}" ]] && kill -TERM "${bridge_pid}" 2>/dev/null || true' TERM INT

# Start the bridge and wait for the JSON line it prints on stdout once it listens (its logs go
# to stderr, the add-on log). On failure, end the script with the bridge's status.
start_bridge() {
    coproc BRIDGE { exec "${launcher[@]}" "${PYTHON}" -m bridge "${args[@]}"; }
    # shellcheck disable=SC2153  # BRIDGE_PID is set by coproc
    bridge_pid="${BRIDGE_PID}"
    local listening=""
    if [[ "${stopping}" == true ]]; then  # the stop came while it was being started
        kill -TERM "${bridge_pid}" 2>/dev/null || true
    fi
    if ! read -r -t 120 listening <&"${BRIDGE[0]}" || [[ "${listening}" != *'"listening"'* ]]; then
        [[ "${stopping}" == true ]] || bashio::log.error "The bridge did not start; see the lines above"
        kill -TERM "${bridge_pid}" 2>/dev/null || true
        local status=0
        wait "${bridge_pid}" || status=$?
        exit $((status == 0 ? 1 : status))
    fi
}

# Tell Home Assistant where the bridge is (add-on) or the user how to reach it (container).
announce() {
    if [[ "${ADDON}" == true ]]; then
        # The add-on's DNS name on the internal network (the container's hostname is the same).
        local host config
        host="$(bashio::addon.hostname 2> /dev/null || true)"
        if [[ -z "${host}" || "${host}" == "null" ]]; then
            host="$(hostname)"
        fi
        config="$(bashio::var.json \
            host "${host}" \
            port "^${PORT}" \
            token "$(<"${TOKEN_FILE}")")"
        if bashio::discovery "${DISCOVERY_SERVICE}" "${config}" > /dev/null; then
            bashio::log.info "Announced the bridge to Home Assistant; add it under Settings > Devices & services"
        else
            bashio::log.error "Could not announce the bridge to Home Assistant; add it by hand (DOCS)"
        fi
    else
        bashio::log.info "Listening on port ${PORT}; the token is in ${TOKEN_FILE} (docker exec ... cat ${TOKEN_FILE})"
    fi
}

# Wait for the bridge; a trapped SIGTERM interrupts the first wait, the second gets its status.
wait_bridge() {
    local status=0
    wait "${bridge_pid}" || status=$?
    if kill -0 "${bridge_pid}" 2>/dev/null; then
        status=0
        wait "${bridge_pid}" || status=$?
    fi
    return "${status}"
}

# The neonize backend exits 75 when only a fresh process frees what WhatsApp's library leaks
# (an abandoned pairing's thread). Start it again here, on the same port and token, so the
# add-on does not stop (the Supervisor restarts a stopped add-on only when its watchdog is on).
# Anything else, or restarts in a quick series, ends the add-on with the bridge's status.
start_bridge
announce
restarts=()
while true; do
    status=0
    wait_bridge || status=$?
    if [[ "${stopping}" == true || "${status}" != "${RESTART_EXIT_CODE}" ]]; then
        exit "${status}"
    fi
    now="$(date +%s)"
    recent=()
    for at in "${restarts[@]}"; do
        ((now - at < QUICK_RESTART_WINDOW)) && recent+=("${at}")
    done
    restarts=("${recent[@]}" "${now}")
    if ((${#restarts[@]} > MAX_QUICK_RESTARTS)); then
        bashio::log.error "The bridge asked for a fresh process ${#restarts[@]} times in ${QUICK_RESTART_WINDOW} s; stopping"
        exit "${status}"
    fi
    bashio::log.info "The bridge asked for a fresh process; starting it again"
    start_bridge
    bashio::log.info "The bridge is listening again on port ${PORT}"
done
