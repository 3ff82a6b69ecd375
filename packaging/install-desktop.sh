#!/usr/bin/env bash
# Put ganinterface in the desktop's menus and software centres: installs the desktop entry, the
# icon (PNG at 48/128/256 px and SVG) and the AppStream metadata under PREFIX/share.
#
#   packaging/install-desktop.sh [PREFIX [EXECUTABLE]]
#
# PREFIX      default ~/.local (your menus only); /usr/local for everyone, or a staging folder
# EXECUTABLE  what the menu entry runs; default `ganinterface` from PATH (a pip install). For the
#             app bundle give its absolute path, e.g. "$PWD/dist/ganinterface/ganinterface".
set -euo pipefail

packaging=$(cd "$(dirname "$0")" && pwd)
resources=$packaging/../resources
prefix=${1:-$HOME/.local}
executable=${2:-ganinterface}
share=$prefix/share

case $executable in
  *[\"\`\$\\]*) echo "install-desktop.sh: the executable path must not contain \" \` \$ or \\: $executable" >&2
                exit 1 ;;
esac

install -Dm644 "$packaging/io.github.ganinterface.metainfo.xml" \
  "$share/metainfo/io.github.ganinterface.metainfo.xml"
install -d "$share/applications"
sed "s|^Exec=ganinterface |Exec=\"$executable\" |" "$packaging/ganinterface.desktop" \
  > "$share/applications/ganinterface.desktop"
for size in 48 128 256; do
  install -Dm644 "$resources/ganinterface-$size.png" \
    "$share/icons/hicolor/${size}x${size}/apps/ganinterface.png"
done
install -Dm644 "$resources/ganinterface.svg" "$share/icons/hicolor/scalable/apps/ganinterface.svg"

echo "installed the ganinterface desktop entry, icon and metadata under $share"
