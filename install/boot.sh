#!/bin/sh
# Run at every boot from /data/rc.local (one line, added by installservice.sh): /service lives in RAM and udev's
# runtime rules in /run, so both are recreated here; the GUI v1 pages come back after a firmware update if they
# were installed. Output goes to /data/apps/dbus-batterybank/boot.log.
set -u
HERE=$(cd -P "$(dirname "$0")" && pwd -P)
# shellcheck source=install/lib.sh
. "$HERE/lib.sh"

date
if problem=$(check_node "$APP"); then
  apply_down_file || say "no battery configured in config.ini: service left down"
else
  # Without a usable Node the service would restart every second; keep it down and say why.
  printf '%s\n' "$problem"
  : >"$APP/service/down"
fi
link_service
serial_starter_apply
gui_v2_install
if [ -f "$STATE/gui-v1" ] && gui_dir=$(gui_v1_dir) && ! grep -qF "$GUI1_MARK" "$gui_dir/PageBattery.qml"; then
  say "GUI v1 pages missing (firmware update?): adding them again"
  gui_v1_install
fi
say "boot hook done"
