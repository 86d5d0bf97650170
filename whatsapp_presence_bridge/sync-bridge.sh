#!/usr/bin/env bash
# Refresh this add-on's copy of the bridge package from the integration.
#
# The Supervisor builds an add-on from its own folder only, so the image cannot reach
# custom_components/whatsapp_presence/bridge: the add-on keeps a copy in ./bridge. Run this
# after changing the bridge; tests/addon fails while the copy differs.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
source_dir="${here}/../custom_components/whatsapp_presence/bridge"
rm -rf "${here}/bridge"
mkdir "${here}/bridge"
cp "${source_dir}"/*.py "${here}/bridge/"
echo "bridge copied: $(find "${here}/bridge" -name '*.py' | wc -l) files"
