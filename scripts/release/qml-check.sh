#!/usr/bin/env bash
# Syntax check of every QML and JS file under qml/ with Qt 6's own parser (venus-platform.md §5.3):
# qmlformat (exits 1 on a parse error) and qmllint with every semantic category disabled (the Victron types are
# not available off the device). GUI v1 pages are also checked as the installer rewrites them for Venus < v3.60
# (import QtQuick 1.1). The JS library is checked by node without its `.pragma library` line.
# Needs qt6-declarative-dev-tools (QTBIN=/usr/lib/qt6/bin by default). QML_DIR=<dir> checks another tree.
set -euo pipefail
cd "$(dirname "$0")/../.."
QTBIN=${QTBIN:-/usr/lib/qt6/bin}
QML_DIR=${QML_DIR:-qml}
for tool in qmllint qmlformat; do
  [ -x "$QTBIN/$tool" ] || {
    echo "qml-check: $QTBIN/$tool missing: apt-get install qt6-declarative-dev-tools" >&2
    exit 1
  }
done
categories=(alias compiler controls-sanity deferred-property-id deprecated import inheritance-cycle multiline-strings
  multiple-attached-objects plugin property required signal type unqualified unused-imports with)
syntax_only=()
for c in "${categories[@]}"; do syntax_only+=("--$c" disable); done

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
failed=0
checked=0
check() { # <file> [label]
  local f=$1 label=${2:-$1}
  checked=$((checked + 1))
  if ! "$QTBIN/qmlformat" "$f" >/dev/null 2>"$tmp/err"; then
    echo "qml-check: $label: qmlformat: $(cat "$tmp/err")" >&2
    failed=$((failed + 1))
  elif ! "$QTBIN/qmllint" --bare "${syntax_only[@]}" "$f" >"$tmp/err" 2>&1; then
    echo "qml-check: $label: qmllint: $(cat "$tmp/err")" >&2
    failed=$((failed + 1))
  fi
}
for f in "$QML_DIR"/gui-v2/*.qml "$QML_DIR"/gui-v1/*.qml; do check "$f"; done
for f in "$QML_DIR"/gui-v1/*.qml; do
  sed 's/^import QtQuick 2$/import QtQuick 1.1/' "$f" >"$tmp/$(basename "$f")"
  grep -q '^import QtQuick 1.1$' "$tmp/$(basename "$f")" || {
    echo "qml-check: $f: no 'import QtQuick 2' line for the installer to rewrite" >&2
    failed=$((failed + 1))
  }
  check "$tmp/$(basename "$f")" "$f (as QtQuick 1.1)"
done
# GUI v1 before v3.60~18 runs Qt 4 (QtQuick 1.1, ES5 JavaScript): none of the newer syntax in what it loads.
for f in "$QML_DIR"/gui-v1/*.qml "$QML_DIR"/*.js; do
  checked=$((checked + 1))
  if grep -nE '(^|[^A-Za-z_])(let|const) |=>|`|\?\.|\?\?|readonly property|property var |required property' "$f" >"$tmp/err"; then
    echo "qml-check: $f: not QtQuick 1.1 / ES5: $(cat "$tmp/err")" >&2
    failed=$((failed + 1))
  fi
done
for f in "$QML_DIR"/*.js; do
  checked=$((checked + 1))
  sed '1s/^\.pragma library$//' "$f" >"$tmp/check.js"
  node --check "$tmp/check.js" 2>"$tmp/err" || {
    echo "qml-check: $f: $(cat "$tmp/err")" >&2
    failed=$((failed + 1))
  }
done
if [ "$failed" -gt 0 ]; then
  echo "qml-check: $failed of $checked checks failed" >&2
  exit 1
fi
echo "qml-check: $checked files parse (qmlformat, qmllint syntax-only, node --check)"
