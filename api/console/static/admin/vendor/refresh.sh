#!/usr/bin/env bash
# Refresh the administrator and auditor pages' vendored browser assets from their npm packages, at the
# pinned versions below. Nothing is built: each file is copied as its package ships it, with its licence.
# Run from anywhere; needs `npm` (only `npm pack`, no install, no build chain).
set -euo pipefail
BPMN_JS=18.31.1
here="$(cd "$(dirname "$0")" && pwd)"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
cd "$work"
npm pack --silent "bpmn-js@$BPMN_JS" >/dev/null
mkdir bpmn-js && tar xzf "bpmn-js-$BPMN_JS.tgz" -C bpmn-js
src=bpmn-js/package
dest="$here/bpmn-js"
rm -rf "$dest"
mkdir -p "$dest/assets/bpmn-font/css" "$dest/assets/bpmn-font/font"
cp "$src/dist/bpmn-modeler.production.min.js" "$src/dist/bpmn-navigated-viewer.production.min.js" "$dest/"
cp "$src/dist/assets/diagram-js.css" "$src/dist/assets/bpmn-js.css" "$dest/assets/"
cp "$src/dist/assets/bpmn-font/css/bpmn.css" "$dest/assets/bpmn-font/css/"
cp "$src/dist/assets/bpmn-font/font/"* "$dest/assets/bpmn-font/font/"
cp "$src/LICENSE" "$dest/LICENSE"
printf 'bpmn-js %s (npm), files copied unchanged from its dist/; licence in LICENSE.\n' "$BPMN_JS" > "$dest/VERSION"
echo "vendored bpmn-js $BPMN_JS into $dest"
