#!/usr/bin/env bash
# Installs nsac into .venv with everything it needs: Debian/Ubuntu libraries via apt (when root), the rest from PyPI.
# Usage: bash scripts/setup.sh [EXTRAS]   (EXTRAS defaults to "all": the legacy codec libraries and the test tools)
set -euo pipefail
extras="${1:-all}"
cd "$(dirname "$0")/.."

if command -v apt-get >/dev/null 2>&1 && [ "$(id -u)" = 0 ]; then
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    # AMR-WB (encoder and decoder) and the codec2 library with FreeDV's LPCNet; the codec2 package is named
    # after its soname, which differs between releases, so take the newest one the archive has
    codec2_pkg=$(apt-cache pkgnames libcodec2- | grep -E '^libcodec2-[0-9.]+$' | sort -V | tail -n 1 || true)
    pkgs="libsndfile1 libvo-amrwbenc0 libopencore-amrwb0 ${codec2_pkg}"
    # the headless-browser tests of the bench report and the listening-test page; FluidSynth and a General
    # MIDI soundfont render the music training corpus (nsac.train.rendered_music) and its tests
    [ "$extras" = "all" ] && pkgs="$pkgs chromium chromium-driver fluidsynth fluid-soundfont-gm"
    python3 -c "import ensurepip, venv" 2>/dev/null || pkgs="$pkgs python3-venv python3-pip"
    apt-get install -y -qq --no-install-recommends $pkgs >/dev/null
else
    echo "setup: not root or no apt-get: skipping system packages (amrwb and lpcnet-freedv need" \
         "libvo-amrwbenc0, libopencore-amrwb0 and libcodec2)" >&2
fi

[ -x .venv/bin/python ] || python3 -m venv .venv
.venv/bin/python -m pip install -q --upgrade pip
.venv/bin/python -m pip install -q -e ".[${extras}]"
