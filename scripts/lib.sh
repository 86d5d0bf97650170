# Shared by the scripts in this folder: where things live and how to run a
# command in the project's Python 3.14 environment.
#
# Home Assistant 2026.10 needs Python >= 3.14.2. When the host has one we use
# it directly; otherwise (Debian 12) scripts/setup builds a Debian "forky" root
# file system under .cache/rootfs and every command runs inside it through a
# private mount namespace (the mounts vanish with the namespace).
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
# WHATSAPP_PRESENCE_ENV names another checkout whose environment (.cache, .venv) this one
# borrows, e.g. for a git worktree: scripts/setup is then not needed again.
ENV_ROOT="${WHATSAPP_PRESENCE_ENV:-$ROOT}"
CACHE="$ENV_ROOT/.cache"
ROOTFS="$CACHE/rootfs"
# WHATSAPP_PRESENCE_HA=latest picks the second environment, on the newest Home Assistant
# release (scripts/setup --ha latest builds it in .venv-latest).
case "${WHATSAPP_PRESENCE_HA:-pinned}" in
  pinned) VENV="$ENV_ROOT/.venv" ;;
  latest) VENV="$ENV_ROOT/.venv-latest" ;;
  *) echo "WHATSAPP_PRESENCE_HA is pinned or latest, not ${WHATSAPP_PRESENCE_HA}." >&2; exit 2 ;;
esac
MODE_FILE="$CACHE/python-mode"

log() { printf '\033[1m==> %s\033[0m\n' "$*" >&2; }

# Print the path of a host Python >= 3.14.2, or nothing.
host_python() {
  local candidate
  for candidate in python3.14 python3; do
    if command -v "$candidate" >/dev/null 2>&1 &&
      "$candidate" -c 'import sys; sys.exit(sys.version_info < (3, 14, 2))' 2>/dev/null; then
      command -v "$candidate"
      return 0
    fi
  done
  return 0
}

# Run "$@" with the project's Python environment: the venv first on PATH, inside
# the root file system when the host has no suitable Python. With exec_in_env=1 (a shell
# variable, never exported) the command replaces the shell, so a signal sent to the script
# reaches it (scripts/run).
in_env() {
  local mode
  mode="$(cat "$MODE_FILE" 2>/dev/null || echo missing)"
  case "$mode" in
    host)
      ${exec_in_env:+exec} env PATH="$VENV/bin:$PATH" VIRTUAL_ENV="$VENV" "$@"
      ;;
    rootfs)
      in_rootfs env PATH="$VENV/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin" \
        VIRTUAL_ENV="$VENV" "$@"
      ;;
    *)
      echo "The environment is not set up: run scripts/setup first." >&2
      return 1
      ;;
  esac
}

# Run "$@" as root inside the root file system, in the current directory, with
# the checkout, /proc, /sys and /dev bind-mounted at their usual places.
in_rootfs() {
  local cwd
  cwd="$(pwd)"
  ${exec_in_env:+exec} unshare --mount --propagation private -- /bin/bash -c '
    set -e
    rootfs="$1"; root="$2"; env_root="$3"; cwd="$4"; shift 4
    mount --rbind /proc "$rootfs/proc"
    mount --rbind /sys "$rootfs/sys"
    mount --rbind /dev "$rootfs/dev"
    for dir in "$env_root" "$root"; do
      mkdir -p "$rootfs$dir"
      mount --bind "$dir" "$rootfs$dir"
    done
    cp -L /etc/resolv.conf "$rootfs/etc/resolv.conf" 2>/dev/null || true
    exec chroot "$rootfs" /usr/bin/env -C "$cwd" HOME=/root LANG=C.UTF-8 \
      TERM="${TERM:-dumb}" CI="${CI:-}" "$@"
  ' bash "$ROOTFS" "$ROOT" "$ENV_ROOT" "$cwd" "$@"
}
