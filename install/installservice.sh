#!/bin/sh
# Installs (or updates) dbus-batterybank on a Venus OS GX from an unpacked release:
#
#   tar -xzf dbus-batterybank-<version>.tar.gz -C /tmp && sh /tmp/dbus-batterybank/install/installservice.sh
#
# - copies the release to /data/apps/dbus-batterybank (an existing config.ini and the driver's state are kept;
#   a config.ini with commented examples is created if there is none);
# - links the daemontools service into /service and adds one line to /data/rc.local, so the service comes back
#   after every reboot and firmware update;
# - tells serial-starter to leave the serial ports config.ini assigns to us alone (never any other port);
# - installs the gui-v2 plugin (Venus >= v3.70) and, only with --gui-v1, the GUI v1 pages;
# - checks Node (>= 20) and the native modules first, and changes nothing if they are missing;
# - starts the service when config.ini configures a battery.
#
# Options: --gui-v1 add our pages to GUI v1 (changes files on the root filesystem, backed up first),
#          --no-gui-v1 remove them again, --force-ports take the configured ports even if another driver seems
#          to use them, --no-start do not start the service. ROOT=/some/dir installs into a fake root (tests).
set -eu
HERE=$(cd -P "$(dirname "$0")" && pwd -P)
# shellcheck source=install/lib.sh
. "$HERE/lib.sh"
SRC=$(cd -P "$HERE/.." && pwd -P)

gui_v1=keep
FORCE_PORTS=no
start=yes
for arg in "$@"; do
  case $arg in
    --gui-v1) gui_v1=yes ;;
    --no-gui-v1) gui_v1=no ;;
    --force-ports) FORCE_PORTS=yes ;;
    --no-start) start=no ;;
    -h | --help)
      sed -n '2,/^set -eu/p' "$0" | sed '$d; s/^# \{0,1\}//'
      exit 0
      ;;
    *) die "unknown option $arg (see --help)" ;;
  esac
done

# --- 1. checks: nothing is changed unless they pass -------------------------------------------------------
for f in dist/cli.js package.json config.default.ini service/run service/log/run install/selftest.cjs; do
  [ -f "$SRC/$f" ] || die "$SRC is not a complete release ($f is missing); unpack the whole tarball"
done
[ -d "$SRC/node_modules" ] || die "$SRC is not a complete release (node_modules is missing)"
if ! problem=$(check_node "$SRC"); then
  printf '%s\n' "$problem" >&2
  exit 1
fi
NODE=$(node_for "$SRC")
arm_env
if ! report=$("$NODE" "$SRC/install/selftest.cjs" 2>&1); then
  printf '%s\n%s\n' "$report" "The native modules of this release do not load on this GX (see above); nothing was changed." >&2
  exit 1
fi
VERSION=$(sed -n 's/^[[:space:]]*"version":[[:space:]]*"\([^"]*\)".*/\1/p' "$SRC/package.json" | head -n 1)
# The whole program loads (every module it imports is in the release) and is the version it says.
if ! started=$("$NODE" "$SRC/dist/cli.js" --version 2>&1) || [ "$started" != "$VERSION" ]; then
  printf '%s\n%s\n' "$started" "The driver does not start on this GX (see above); nothing was changed." >&2
  exit 1
fi
say "Installing $APP_NAME $VERSION into $APP ($("$NODE" --version))"

# --- 2. files ---------------------------------------------------------------------------------------------------
apps_existed=yes
[ -d "$ROOT/data/apps" ] || apps_existed=no
mkdir -p "$APP"
if [ "$apps_existed" = no ]; then
  mkdir -p "$STATE"
  echo "$ROOT/data/apps" >>"$STATE/created-dirs"
fi
if [ "$SRC" != "$(cd -P "$APP" && pwd -P)" ]; then
  if [ -L "$SERVICE_LINK" ] && service_running "$SERVICE_LINK"; then
    say "Stopping the running service for the update"
    svc_do -d "$SERVICE_LINK"
    i=0
    while service_running "$SERVICE_LINK" && [ $i -lt 10 ]; do
      sleep 1
      i=$((i + 1))
    done
  fi
  # Replace what the release ships; config.ini, the driver's state file, backups and service/supervise stay.
  for item in dist node_modules qml install node config.default.ini package.json README.md LICENSE; do
    rm -rf "$APP/$item.new"
    if [ -e "$SRC/$item" ]; then cp -a "$SRC/$item" "$APP/$item.new"; fi
    rm -rf "${APP:?}/$item"
    if [ -e "$APP/$item.new" ]; then mv "$APP/$item.new" "$APP/$item"; fi
  done
  mkdir -p "$APP/service/log"
  cp "$SRC/service/run" "$APP/service/run.new" && mv "$APP/service/run.new" "$APP/service/run"
  cp "$SRC/service/log/run" "$APP/service/log/run.new" && mv "$APP/service/log/run.new" "$APP/service/log/run"
fi

if [ ! -f "$APP/config.ini" ]; then
  cp "$APP/install/config.example.ini" "$APP/config.ini"
  say "Created $DEVICE_APP/config.ini with commented examples"
else
  say "Kept your $DEVICE_APP/config.ini"
fi

# --- 3. service, boot hook, serial-starter, GUI ----------------------------------------------------------------
configured=yes
apply_down_file || configured=no
link_service
rc_local_add
serial_starter_apply
gui_v2_install
case $gui_v1 in
  yes) gui_v1_install ;;
  no) gui_v1_remove ;;
  keep) if [ -f "$STATE/gui-v1" ]; then gui_v1_install; fi ;;
esac

# --- 4. start -------------------------------------------------------------------------------------------------
if [ "$configured" = yes ] && [ "$start" = yes ]; then
  # A new link is picked up by svscan within 5 s and started; an existing supervise needs `svc -u`.
  if [ -p "$APP/service/supervise/control" ]; then svc_do -u "$SERVICE_LINK"; fi
  say "Started: /service/$APP_NAME (svstat /service/$APP_NAME)"
elif [ "$configured" = no ]; then
  cat <<EOF

No battery is configured yet, so the service stays down. Next:
  1. edit $DEVICE_APP/config.ini (the examples in it show how; config.default.ini lists every key);
  2. run sh $DEVICE_APP/install/restart.sh
EOF
fi
cat <<EOF

Logs:      tail -F /var/log/$APP_NAME/current | tai64nlocal
Restart:   sh $DEVICE_APP/install/restart.sh   (after editing config.ini)
Uninstall: sh $DEVICE_APP/install/uninstall.sh
EOF
