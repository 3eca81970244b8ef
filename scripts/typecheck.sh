#!/usr/bin/env bash
# Type-check the package as it installs: generators/, validators/ and flows/ become
# synthrelease.generators, .validators, .flows (pyproject's package-dir). mypy cannot
# follow setuptools' editable-install finder, so this builds a link tree of that layout
# under build/typecheck/ and checks it.
set -euo pipefail
cd "$(dirname "$0")/.."
tree=build/typecheck
rm -rf "$tree"
mkdir -p "$tree/synthrelease"
for entry in synthrelease/*; do
  ln -s "$PWD/$entry" "$tree/synthrelease/$(basename "$entry")"
done
for sub in generators validators flows; do
  ln -s "$PWD/$sub" "$tree/synthrelease/$sub"
done
cd "$tree"
exec "${MYPY:-mypy}" --config-file ../../pyproject.toml -p synthrelease "$@"
