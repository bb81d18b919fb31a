#!/bin/sh
# edgejoin lab: stands in for k3s's install script (get.k3s.io) inside the lab's guests, where
# real k3s would need minutes and gigabytes under TCG. It keeps the real script's interface —
# INSTALL_K3S_* variables, the binary already placed when INSTALL_K3S_SKIP_DOWNLOAD=true, a
# `k3s` systemd unit running `k3s server|agent` that reads /etc/rancher/k3s/config.yaml — and
# refuses what the real script would not accept, so the lab proves edgejoin drives it correctly.
set -eu

BIN_DIR=${INSTALL_K3S_BIN_DIR:-/usr/local/bin}
CONFIG=/etc/rancher/k3s/config.yaml

fail() {
	echo "k3s install (lab stand-in): $*" >&2
	exit 1
}

case ${INSTALL_K3S_VERSION:-} in v*+k3s*) ;; *) fail "INSTALL_K3S_VERSION must name a k3s release, got '${INSTALL_K3S_VERSION:-}'" ;; esac
case ${INSTALL_K3S_EXEC:-} in server | agent) ;; *) fail "INSTALL_K3S_EXEC must be server or agent, got '${INSTALL_K3S_EXEC:-}'" ;; esac
[ "${INSTALL_K3S_SKIP_DOWNLOAD:-}" = true ] || fail "this lab has no internet: the binary must come from edgejoin (INSTALL_K3S_SKIP_DOWNLOAD=true)"
[ -x "$BIN_DIR/k3s" ] || fail "INSTALL_K3S_SKIP_DOWNLOAD=true but no executable $BIN_DIR/k3s"
"$BIN_DIR/k3s" --version | grep -q "$INSTALL_K3S_VERSION" || fail "$BIN_DIR/k3s is not $INSTALL_K3S_VERSION"
[ -s "$CONFIG" ] || fail "no $CONFIG: k3s would start without its role"

cat >/etc/systemd/system/k3s.service <<UNIT
[Unit]
Description=Lightweight Kubernetes (edgejoin lab stand-in)
Wants=network-online.target
After=network-online.target

[Service]
Type=simple
ExecStart=$BIN_DIR/k3s $INSTALL_K3S_EXEC
Restart=on-failure
RestartSec=5

[Install]
WantedBy=multi-user.target
UNIT
systemctl daemon-reload
systemctl enable k3s.service
systemctl restart k3s.service
# The lab reads this disk after a power-off: what was written must be on it.
sync
echo "k3s $INSTALL_K3S_VERSION installed as $INSTALL_K3S_EXEC (lab stand-in)"
