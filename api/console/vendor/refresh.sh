#!/bin/sh
# Refresh the console's vendored browser libraries from their npm packages, at the pinned versions below.
# Needs only `npm` (for `npm pack`) and `tar`; nothing is built. Run from anywhere:
#   sh api/console/vendor/refresh.sh
# Change a version here, run the script, look at the console (tests/test_console_browser.py), commit.
set -eu

BPMN_JS=18.31.1
ECHARTS=6.1.0

here=$(cd "$(dirname "$0")" && pwd)
static="$here/../static/vendor"
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

unpack() {  # unpack NAME VERSION -> $work/NAME
    (cd "$work" && npm pack --silent "$1@$2" >/dev/null && mkdir "$1" && tar xzf "$1-$2.tgz" -C "$1" --strip-components=1)
}

unpack bpmn-js "$BPMN_JS"
rm -rf "$static/bpmn-js"
mkdir -p "$static/bpmn-js/assets/bpmn-font/css" "$static/bpmn-js/assets/bpmn-font/font"
cp "$work/bpmn-js/LICENSE" "$static/bpmn-js/"
cp "$work/bpmn-js/dist/bpmn-navigated-viewer.production.min.js" "$static/bpmn-js/"
cp "$work/bpmn-js/dist/assets/diagram-js.css" "$work/bpmn-js/dist/assets/bpmn-js.css" "$static/bpmn-js/assets/"
cp "$work/bpmn-js/dist/assets/bpmn-font/css/bpmn.css" "$static/bpmn-js/assets/bpmn-font/css/"
cp "$work/bpmn-js/dist/assets/bpmn-font/font/bpmn.woff2" "$work/bpmn-js/dist/assets/bpmn-font/font/bpmn.woff" \
   "$static/bpmn-js/assets/bpmn-font/font/"
echo "bpmn-js $BPMN_JS (npm)" > "$static/bpmn-js/VERSION"

unpack echarts "$ECHARTS"
rm -rf "$static/echarts"
mkdir -p "$static/echarts"
cp "$work/echarts/LICENSE" "$work/echarts/NOTICE" "$static/echarts/"
cp "$work/echarts/dist/echarts.common.min.js" "$static/echarts/"
if [ -d "$work/echarts/licenses" ]; then cp -r "$work/echarts/licenses" "$static/echarts/"; fi
echo "echarts $ECHARTS (npm)" > "$static/echarts/VERSION"

echo "vendored bpmn-js $BPMN_JS and echarts $ECHARTS into $static"
