#!/bin/sh
# Removes dbus-batterybank and every change installservice.sh made: the service (stopped with a clean
# disconnect first), the /data/rc.local line (and the file, if the installer created it), the serial-starter
# entry and udev rule (the ports go back to serial-starter), the gui-v2 plugin, the GUI v1 pages (the menu lines
# are taken out of PageBattery.qml), the logs and /data/apps/dbus-batterybank with config.ini.
#
# Options: --keep-config keep /data/apps/dbus-batterybank/config.ini (everything else is removed).
set -eu
HERE=$(cd -P "$(dirname "$0")" && pwd -P)
# shellcheck source=install/lib.sh
. "$HERE/lib.sh"

keep_config=no
for arg in "$@"; do
  case $arg in
    --keep-config) keep_config=yes ;;
    -h | --help)
      sed -n '2,/^set -eu/p' "$0" | sed '$d; s/^# \{0,1\}//'
      exit 0
      ;;
    *) die "unknown option $arg (see --help)" ;;
  esac
done

created_dirs=$(sort -r "$STATE/created-dirs" 2>/dev/null || true)
if [ -d "$APP/service" ]; then
  # TERM first (the driver publishes /Connected 0), then let supervise exit; the /service link goes first so
  # svscan does not start it again.
  rm -f "$SERVICE_LINK"
  svc_do -dx "$APP/service"
  svc_do -dx "$APP/service/log"
fi
rm -f "$SERVICE_LINK"
rc_local_remove
serial_starter_remove
gui_v2_remove
gui_v1_remove
rm -rf "$ROOT/var/log/$APP_NAME" "$ROOT/data/log/$APP_NAME"

if [ "$keep_config" = yes ] && [ -f "$APP/config.ini" ]; then
  find "$APP" -mindepth 1 -maxdepth 1 ! -name config.ini -exec rm -rf {} +
  say "Removed $APP_NAME; kept $DEVICE_APP/config.ini"
else
  rm -rf "$APP"
  say "Removed $APP_NAME"
fi
# Directories the installer created, if nothing else lives in them now (deepest first).
for d in $created_dirs; do rmdir "$d" 2>/dev/null || true; done
