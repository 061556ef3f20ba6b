# shellcheck shell=sh
# Shared by installservice.sh, uninstall.sh, restart.sh and boot.sh (sourced, never run).
#
# Every path below is prefixed with $ROOT, so the scripts can run against a fake root filesystem in tests
# (ROOT=/tmp/x). On the GX, ROOT is empty. Commands that touch the running system (svc, udevadm) are taken
# from PATH; udevadm only runs on a real root unless UDEVADM names a program to use instead.

APP_NAME=dbus-batterybank
DEVICE_APP=/data/apps/$APP_NAME            # the app directory as the GX sees it (rc.local line, links)
ROOT=${ROOT:-}
ROOT=${ROOT%/}
APP=$ROOT$DEVICE_APP
STATE=$APP/.install                        # what the installer created, so uninstall can undo exactly that
SERVICE_LINK=$ROOT/service/$APP_NAME
RC_LOCAL=$ROOT/data/rc.local
RC_MARK="# $APP_NAME boot hook"
RC_LINE="[ -f $DEVICE_APP/install/boot.sh ] && sh $DEVICE_APP/install/boot.sh >$DEVICE_APP/boot.log 2>&1 & $RC_MARK"
SS_CONF=$ROOT/data/conf/serial-starter.d/$APP_NAME.conf
SS_NAME=batterybank                        # the serial-starter program name our ports are assigned to
UDEV_RULES=$ROOT/run/udev/rules.d/99-$APP_NAME.rules
SS_HELPERS=$ROOT/opt/victronenergy/serial-starter
GUI2_AVAILABLE=$ROOT/data/apps/available/$APP_NAME
GUI2_ENABLED=$ROOT/data/apps/enabled/$APP_NAME
VENUS_VERSION_FILE=$ROOT/opt/victronenergy/version
REMOUNT_RW=$ROOT/opt/victronenergy/swupdate-scripts/remount-rw.sh
GUI1_MARK="// $APP_NAME"
GUI1_ENTRIES="MbBatterybankCellsMenu MbBatterybankChargeMenu MbBatterybankBankMenu"
NODE_MIN_MAJOR=20

say() { printf '%s\n' "$*"; }
warn() { printf '%s: warning: %s\n' "$APP_NAME" "$*" >&2; }
die() {
  printf '%s: %s\n' "$APP_NAME" "$*" >&2
  exit 1
}

have() { command -v "$1" >/dev/null 2>&1; }

# svc/svstat act on the given (ROOT-prefixed) directories; without daemontools there is nothing to control.
svc_do() {
  if have svc; then svc "$@" 2>/dev/null || true; fi
}

service_running() {
  have svstat || return 1
  case $(svstat "$1" 2>/dev/null) in *": up "*) return 0 ;; esac
  return 1
}

# Seconds the service has been up (0 if it is not up).
service_uptime() {
  have svstat || {
    echo 0
    return
  }
  svstat "$1" 2>/dev/null | sed -n 's/.*: up (pid [0-9]*) \([0-9]*\) seconds.*/\1/p' | grep . || echo 0
}

udev_do() {
  if [ -n "${UDEVADM:-}" ]; then
    "$UDEVADM" "$@" || true
  elif [ -z "$ROOT" ] && have udevadm; then
    udevadm "$@" || true
  fi
}

# --- Node ---------------------------------------------------------------------------------------------------

# The Node that runs the driver: the bundled one if the release carries it, else the system's.
node_for() { # <app-or-source dir>
  if [ -x "$1/node/bin/node" ]; then echo "$1/node/bin/node"; elif have node; then command -v node; fi
}

# Prints the problem (and the fix) when there is no usable Node; silent and 0 when there is one.
check_node() { # <app-or-source dir>
  node=$(node_for "$1")
  if [ -z "$node" ]; then
    cat <<EOF
Node.js was not found. dbus-batterybank needs Node.js $NODE_MIN_MAJOR or newer.
Fix, one of:
  - Venus OS Large from v3.60 on ships Node 20: Settings > Firmware > Online updates >
    Image type "Large", update, then run this installer again.
  - Install the release that bundles Node: dbus-batterybank-<version>-node-linux-armv7l.tar.gz
    (linux-arm64 for a Raspberry Pi 5 or an aarch64 GX).
  - On a normal image: opkg update && opkg install nodejs (a firmware update removes it again).
EOF
    return 1
  fi
  version=$("$node" --version 2>/dev/null) || version=
  major=$(printf '%s' "$version" | sed -n 's/^v\([0-9][0-9]*\)\..*/\1/p')
  if [ -z "$major" ]; then
    say "$node does not run here (got \"$version\"). A bundled Node must match the CPU:"
    say "use the linux-armv7l release on a Cerbo/Ekrano/Venus GX or 32-bit Raspberry Pi, linux-arm64 on a Pi 5."
    return 1
  fi
  if [ "$major" -lt "$NODE_MIN_MAJOR" ]; then
    cat <<EOF
Node.js $version is too old: dbus-batterybank needs Node.js $NODE_MIN_MAJOR or newer ($node).
Fix: update to Venus OS v3.60 or later (the Large image ships Node 20), or install the release that
bundles Node: dbus-batterybank-<version>-node-linux-armv7l.tar.gz (linux-arm64 on a Pi 5).
EOF
    return 1
  fi
  return 0
}

# The environment the service runs the driver with (service/run does the same).
arm_env() {
  case $(uname -m) in armv7*) ARM_VERSION=${ARM_VERSION:-7} && export ARM_VERSION ;; esac
}

# --- configuration --------------------------------------------------------------------------------------------

# True when config.ini configures at least one battery or a bank (otherwise the driver would exit at once).
config_has_battery() {
  [ -f "$APP/config.ini" ] && grep -Eq '^[[:space:]]*\[(battery\.[a-z0-9_]+|bank)\][[:space:]]*$' "$APP/config.ini"
}

# The serial ports config.ini assigns to batteries (`port = …` lines outside comments), one per line.
config_ports() {
  [ -f "$APP/config.ini" ] || return 0
  sed -n 's/^[[:space:]]*port[[:space:]]*=[[:space:]]*//p' "$APP/config.ini" |
    sed 's/[[:space:]]*[;#].*$//; s/^"\(.*\)"$/\1/; s/[[:space:]]*$//' | grep '^/dev/' | sort -u
}

# Start the service when it is configured, else leave it down (a `down` file) so it does not restart-loop.
apply_down_file() {
  if config_has_battery; then
    rm -f "$APP/service/down"
    return 0
  fi
  : >"$APP/service/down"
  return 1
}

# --- /service and rc.local ------------------------------------------------------------------------------------

link_service() {
  chmod 755 "$APP/service/run" "$APP/service/log/run"
  mkdir -p "$ROOT/service"
  if [ -e "$SERVICE_LINK" ] && [ ! -L "$SERVICE_LINK" ]; then
    die "$SERVICE_LINK exists and is not our link; remove it first"
  fi
  ln -sfn "$APP/service" "$SERVICE_LINK"
}

rc_local_add() {
  if [ ! -e "$RC_LOCAL" ]; then
    mkdir -p "$(dirname "$RC_LOCAL")"
    printf '#!/bin/sh\n%s\n' "$RC_LINE" >"$RC_LOCAL"
    chmod 755 "$RC_LOCAL"
    mkdir -p "$STATE"
    : >"$STATE/created-rc-local"
    return 0
  fi
  grep -v -F "$RC_MARK" "$RC_LOCAL" >"$RC_LOCAL.$APP_NAME.tmp" || true
  printf '%s\n' "$RC_LINE" >>"$RC_LOCAL.$APP_NAME.tmp"
  cat "$RC_LOCAL.$APP_NAME.tmp" >"$RC_LOCAL" # keeps the file's owner and mode
  rm -f "$RC_LOCAL.$APP_NAME.tmp"
  if [ ! -x "$RC_LOCAL" ]; then
    warn "$RC_LOCAL is not executable (custom startup scripts disabled?): the service will not come back after a reboot until it is"
  fi
}

rc_local_remove() {
  [ -f "$RC_LOCAL" ] || return 0
  grep -v -F "$RC_MARK" "$RC_LOCAL" >"$RC_LOCAL.$APP_NAME.tmp" || true
  cat "$RC_LOCAL.$APP_NAME.tmp" >"$RC_LOCAL"
  rm -f "$RC_LOCAL.$APP_NAME.tmp"
  if [ -f "$STATE/created-rc-local" ] && [ "$(grep -cv '^#!' "$RC_LOCAL")" = 0 ]; then
    rm -f "$RC_LOCAL"
  fi
}

# --- serial-starter -------------------------------------------------------------------------------------------
#
# serial-starter (Venus) starts a driver for every serial port from the program name udev gives the port
# (VE_SERVICE) or, for USB adapters without one, probes the `default` list. Our ports get VE_SERVICE=batterybank
# from a runtime udev rule (/run, not the read-only root), and our serial-starter.d entry maps that name to
# `ignore`: serial-starter then leaves exactly those ports to this driver. The default and rs485 probe lists are
# never changed, so no other port is touched.

# The kernel name behind a configured port (/dev/serial/by-id/… resolved), or the basename if it is absent.
port_kernel_name() {
  target=$(readlink -f "$ROOT$1" 2>/dev/null) || target=
  if [ -n "$target" ] && [ -e "$target" ]; then basename "$target"; else basename "$1"; fi
}

# udev match keys for a configured port.
port_match() {
  case $1 in
    /dev/tty*) printf 'SUBSYSTEM=="tty", KERNEL=="%s"' "${1#/dev/}" ;;
    *) printf 'SUBSYSTEM=="tty", SYMLINK=="%s"' "${1#/dev/}" ;;
  esac
}

# Refuses a port another driver owns: a dedicated VE_SERVICE from a udev rule (other than the generic probe
# lists), or a serial-starter service that has been up on it for more than a minute (a probe that succeeded).
port_owner() {
  tty=$(port_kernel_name "$1")
  ve=
  if [ -n "${UDEVADM:-}" ] || { [ -z "$ROOT" ] && have udevadm; }; then
    ve=$(udev_do info --query=property --name="$ROOT$1" 2>/dev/null | sed -n 's/^VE_SERVICE=//p')
  fi
  case $ve in
    "" | default | rs485 | "$SS_NAME") ;;
    *)
      echo "udev assigns it to \"$ve\""
      return 0
      ;;
  esac
  for s in "$ROOT"/service/*."$tty"; do
    [ -e "$s" ] || continue
    up=$(service_uptime "$s")
    if [ "$up" -gt 60 ]; then
      echo "$(basename "$s") has been running on it for $up s"
      return 0
    fi
  done
  return 1
}

# Ports accepted before ($STATE/ports) stay ours without asking again (right after a boot a serial-starter probe may
# still sit on them); FORCE_PORTS=yes also takes new ports another driver seems to use.
serial_starter_apply() {
  ports=$(config_ports)
  remember_dir "$(dirname "$(dirname "$SS_CONF")")"
  remember_dir "$(dirname "$SS_CONF")"
  cat >"$SS_CONF" <<EOF
# $APP_NAME: serial ports assigned to dbus-batterybank (udev VE_SERVICE=$SS_NAME, see
# $UDEV_RULES) are left alone by serial-starter; dbus-batterybank opens them itself.
# Written by $DEVICE_APP/install/installservice.sh; removed by uninstall.sh.
alias $SS_NAME ignore
EOF
  remember_dir "$(dirname "$(dirname "$UDEV_RULES")")"
  remember_dir "$(dirname "$UDEV_RULES")"
  {
    echo "# $APP_NAME: the serial ports config.ini assigns to dbus-batterybank (regenerated at every boot)"
    for p in $ports; do
      if [ "${FORCE_PORTS:-no}" != yes ] &&
        ! grep -qxF "$p" "$STATE/ports" 2>/dev/null &&
        owner=$(port_owner "$p"); then
        warn "not taking $p: $owner. Pick another port in config.ini, or run installservice.sh --force-ports if that driver is wrong"
        continue
      fi
      printf '%s, ENV{VE_SERVICE}="%s"\n' "$(port_match "$p")" "$SS_NAME"
      echo "$p" >>"$UDEV_RULES.ports"
    done
  } >"$UDEV_RULES"
  mkdir -p "$STATE"
  if [ -f "$UDEV_RULES.ports" ]; then mv "$UDEV_RULES.ports" "$STATE/ports"; else rm -f "$STATE/ports"; fi
  udev_do control --reload
  for p in $ports; do
    grep -qF "\"${p#/dev/}\"" "$UDEV_RULES" || continue
    tty=$(port_kernel_name "$p")
    # Stop whatever serial-starter is probing on it, then let udev re-announce the port with our name.
    if [ -x "$SS_HELPERS/stop-tty.sh" ]; then "$SS_HELPERS/stop-tty.sh" "$tty" >/dev/null 2>&1 || true; fi
    udev_do trigger --action=add --sysname-match="$tty"
  done
}

serial_starter_remove() {
  assigned=
  if [ -f "$UDEV_RULES" ]; then
    assigned=$(sed -n 's/.*=="\([^"]*\)", ENV{VE_SERVICE}.*/\1/p' "$UDEV_RULES")
  fi
  rm -f "$SS_CONF" "$UDEV_RULES"
  udev_do control --reload
  for name in $assigned; do
    # Give the port back: udev re-announces it and serial-starter probes it as before.
    udev_do trigger --action=add --sysname-match="$(port_kernel_name "/dev/$name")"
  done
}

# --- gui-v2 plugin ---------------------------------------------------------------------------------------------

gui_v2_install() {
  json=$APP/qml/gui-v2/$APP_NAME.json
  [ -f "$json" ] || return 0
  remember_dir "$ROOT/data/apps/available"
  remember_dir "$ROOT/data/apps/enabled"
  mkdir -p "$GUI2_AVAILABLE/gui-v2"
  cp "$json" "$GUI2_AVAILABLE/gui-v2/$APP_NAME.json.tmp"
  mv "$GUI2_AVAILABLE/gui-v2/$APP_NAME.json.tmp" "$GUI2_AVAILABLE/gui-v2/$APP_NAME.json"
  ln -sfn "$GUI2_AVAILABLE" "$GUI2_ENABLED"
}

gui_v2_remove() {
  rm -f "$GUI2_ENABLED"
  rm -rf "$GUI2_AVAILABLE"
}

# Directories the installer had to create (recorded in $STATE/created-dirs), removed again if empty.
remember_dir() { # <dir>: mkdir -p, recording it when it did not exist
  if [ ! -d "$1" ]; then
    mkdir -p "$1"
    mkdir -p "$STATE"
    grep -qxF "$1" "$STATE/created-dirs" 2>/dev/null || echo "$1" >>"$STATE/created-dirs"
  fi
}

# --- GUI v1 pages (only when asked: the only change to the read-only root filesystem) -----------------------

# "v3.60~18" -> 3060018; a release without ~N counts as after every beta of it; unknown -> 0.
venus_version_number() {
  sed -n '1p' "$VENUS_VERSION_FILE" 2>/dev/null | awk '
    match($0, /^v[0-9]+\.[0-9]+/) {
      split(substr($0, 2, RLENGTH - 1), v, ".")
      beta = 999
      if (substr($0, RLENGTH + 1, 1) == "~") { rest = substr($0, RLENGTH + 2); sub(/[^0-9].*/, "", rest); if (rest != "") beta = rest + 0 }
      printf "%d\n", v[1] * 1000000 + v[2] * 1000 + beta; found = 1
    }
    END { if (!found) print 0 }'
}

gui_v1_dir() {
  for d in "$ROOT/opt/victronenergy/gui/qml" "$ROOT/opt/victronenergy/gui-v1/qml"; do
    if [ -f "$d/PageBattery.qml" ]; then
      echo "$d"
      return 0
    fi
  done
  return 1
}

remount_rw() {
  if [ -x "$REMOUNT_RW" ]; then "$REMOUNT_RW" >/dev/null 2>&1 || true; fi
}

restart_gui() {
  for g in gui start-gui; do
    if [ -d "$ROOT/service/$g" ]; then svc_do -t "$ROOT/service/$g"; fi
  done
}

# Copies our pages into the GUI v1 qml directory and adds three menu entries to PageBattery.qml (shown only for
# our ProductId). Backs up the original PageBattery.qml once per Venus version under $APP/backup/.
gui_v1_install() {
  dir=$(gui_v1_dir) || {
    warn "GUI v1 not found (no PageBattery.qml under /opt/victronenergy/gui{,-v1}/qml); skipping its pages"
    return 0
  }
  num=$(venus_version_number)
  ver=$(sed -n '1p' "$VENUS_VERSION_FILE" 2>/dev/null)
  remount_rw
  backup=$APP/backup/gui-v1/${ver:-unknown}
  if [ ! -f "$backup/PageBattery.qml" ]; then
    mkdir -p "$backup"
    grep -v -F "$GUI1_MARK" "$dir/PageBattery.qml" >"$backup/PageBattery.qml" || true
  fi
  for f in "$APP"/qml/gui-v1/*.qml "$APP"/qml/batterybank-paths.js; do
    out=$dir/$(basename "$f")
    # The pages are written for QtQuick 2 (GUI v1 on Qt 6, Venus >= v3.60~18); older builds run Qt 4.
    if [ "$num" -lt 3060018 ]; then
      sed 's/^import QtQuick 2$/import QtQuick 1.1/' "$f" >"$out"
    else
      cp "$f" "$out"
    fi
    # Before v3.00~14 GUI v1 called VisibleItemModel VisualItemModel.
    if [ "$num" -lt 3000014 ]; then sed -i 's/VisibleItemModel/VisualItemModel/g' "$out"; fi
  done
  if ! grep -qF "$GUI1_MARK" "$dir/PageBattery.qml"; then
    anchor='^[[:space:]]*model:[[:space:]]*Vis[a-z]*ItemModel[[:space:]]*[{]'
    if ! grep -q "$anchor" "$dir/PageBattery.qml"; then
      warn "PageBattery.qml has no item model line to add our entries after; pages copied, menu entries not added"
      return 0
    fi
    # Our entries go right after the item model line, one line each, every one ending in the marker.
    ENTRIES=$(for e in $GUI1_ENTRIES; do printf '\t\t%s { bindPrefix: service.path("") } %s\n' "$e" "$GUI1_MARK"; done)
    export ENTRIES
    awk -v anchor="$anchor" '{ print } !done && $0 ~ anchor { print ENVIRON["ENTRIES"]; done = 1 }' \
      "$dir/PageBattery.qml" >"$dir/PageBattery.qml.$APP_NAME.tmp"
    cat "$dir/PageBattery.qml.$APP_NAME.tmp" >"$dir/PageBattery.qml"
    rm -f "$dir/PageBattery.qml.$APP_NAME.tmp"
  fi
  mkdir -p "$STATE"
  : >"$STATE/gui-v1"
  restart_gui
}

gui_v1_remove() {
  dir=$(gui_v1_dir) || return 0
  [ -f "$STATE/gui-v1" ] || grep -qF "$GUI1_MARK" "$dir/PageBattery.qml" || return 0
  remount_rw
  if grep -qF "$GUI1_MARK" "$dir/PageBattery.qml"; then
    sed -i "\\|$GUI1_MARK\$|d" "$dir/PageBattery.qml"
  fi
  for f in "$APP"/qml/gui-v1/*.qml "$APP"/qml/batterybank-paths.js; do
    rm -f "$dir/$(basename "$f")"
  done
  rm -f "$STATE/gui-v1"
  restart_gui
}
