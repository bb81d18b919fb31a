#!/bin/sh
# edgejoin enrollment agent: enroll with the bootstrap token cloud-init left here, keep the node
# credential, wait for approval and a quorum seat, install k3s with the config it is given, and
# report progress until the node is ready. POSIX sh + curl + awk; safe to run again on every boot.
#
# Exit status: 0 = joined, or stopped on purpose (rejected, retired, seat revoked);
# 3 = refused in a way no retry fixes (token spent or expired, credential revoked);
# anything else = transient, systemd starts it again.
set -u
umask 077

STATE_DIR=${EDGEJOIN_AGENT_STATE_DIR:-/var/lib/edgejoin-agent}
K3S_CONFIG=${EDGEJOIN_AGENT_K3S_CONFIG:-/etc/rancher/k3s/config.yaml}
K3S_DATA=${EDGEJOIN_AGENT_K3S_DATA:-/var/lib/rancher/k3s}
# Where k3s writes the cluster admin's kubeconfig on a server.
KUBECONFIG_FILE=${EDGEJOIN_AGENT_KUBECONFIG:-/etc/rancher/k3s/k3s.yaml}
BIN_DIR=${EDGEJOIN_AGENT_BIN_DIR:-/usr/local/bin}
# Longest wait between two config polls, whatever retry_after says (seconds).
POLL_CAP=${EDGEJOIN_AGENT_POLL_CAP:-300}
# How long k3s may take to become ready after its install, and how often to look (seconds).
READY_TIMEOUT=${EDGEJOIN_AGENT_READY_TIMEOUT:-900}
READY_INTERVAL=${EDGEJOIN_AGENT_READY_INTERVAL:-5}
# k3s agents have no kubeconfig; their kubelet's health endpoint says the node is up.
KUBELET_HEALTHZ=${EDGEJOIN_AGENT_KUBELET_HEALTHZ:-http://127.0.0.1:10248/healthz}
DMI_DIR=${EDGEJOIN_AGENT_DMI_DIR:-/sys/class/dmi/id}

RESP="$STATE_DIR/response.json"
HTTP_STATUS=000

# host:port of edgejoin's syslog receiver, once a config named it (kept for the next boots).
SYSLOG_TARGET=$(head -n 1 "$STATE_DIR/syslog" 2>/dev/null | tr -d '\r\n')
case $SYSLOG_TARGET in *[!A-Za-z0-9.:-]* | *:*:* | :* | *:) SYSLOG_TARGET="" ;; esac

# Lines also go to edgejoin's syslog receiver when util-linux logger is there: best effort, never fatal.
log() {
	printf 'edgejoin-agent: %s\n' "$*" >&2
	if [ -n "$SYSLOG_TARGET" ] && command -v logger >/dev/null 2>&1; then
		logger -d -n "${SYSLOG_TARGET%:*}" -P "${SYSLOG_TARGET##*:}" -t edgejoin-agent -- "$*" 2>/dev/null || true
	fi
}

die() {
	status=$1
	shift
	log "$*"
	exit "$status"
}

# The first line of a state file, without its line end; fails when the file is missing or empty.
state_value() {
	[ -s "$STATE_DIR/$1" ] || return 1
	head -n 1 "$STATE_DIR/$1" | tr -d '\r\n'
}

# A JSON string literal for $1: backslash, quote and tab escaped, lines joined with \n, other
# control characters dropped, at most 4000 bytes.
json_str() {
	printf '%s' "$1" | head -c 4000 | LC_ALL=C awk '
		{
			if (NR > 1) out = out "\\n"
			n = length($0)
			for (i = 1; i <= n; i++) {
				c = substr($0, i, 1)
				if (c == "\\") out = out "\\\\"
				else if (c == "\"") out = out "\\\""
				else if (c == "\t") out = out "\\t"
				else if (c < " ") continue
				else out = out c
			}
		}
		END { printf "\"%s\"", out }'
}

# json_get PATH [keys] < FILE: the value at a dotted PATH of a JSON document, strings decoded
# (escapes, \uXXXX to UTF-8); with "keys", the member names of the object at PATH, one a line.
# Fails (status 1) when the value is missing or null, 2 when the document is not JSON.
json_get() {
	LC_ALL=C awk -v want="$1" -v mode="${2:-value}" '
		function fail() { bad = 1; exit 2 }
		function ws() { while (pos <= n && index(" \t\r\n", substr(s, pos, 1))) pos++ }
		function hexval(h,    i, d, v) {
			v = 0; h = tolower(h)
			for (i = 1; i <= 4; i++) { d = index("0123456789abcdef", substr(h, i, 1)); if (!d) fail(); v = v * 16 + d - 1 }
			return v
		}
		function utf8(cp) {
			if (cp < 128) return sprintf("%c", cp)
			if (cp < 2048) return sprintf("%c%c", 192 + int(cp / 64), 128 + cp % 64)
			if (cp < 65536) return sprintf("%c%c%c", 224 + int(cp / 4096), 128 + int(cp / 64) % 64, 128 + cp % 64)
			return sprintf("%c%c%c%c", 240 + int(cp / 262144), 128 + int(cp / 4096) % 64, 128 + int(cp / 64) % 64, 128 + cp % 64)
		}
		function str(    out, c, e, cp, lo) {
			pos++
			out = ""
			while (pos <= n) {
				if (match(substr(s, pos, 4096), /^[^"\\]+/)) { out = out substr(s, pos, RLENGTH); pos += RLENGTH; continue }
				c = substr(s, pos, 1)
				if (c == "\"") { pos++; return out }
				e = substr(s, pos + 1, 1); pos += 2
				if (e == "n") out = out "\n"
				else if (e == "t") out = out "\t"
				else if (e == "r") out = out "\r"
				else if (e == "b") out = out "\b"
				else if (e == "f") out = out "\f"
				else if (e == "u") {
					cp = hexval(substr(s, pos, 4)); pos += 4
					if (cp >= 55296 && cp < 56320 && substr(s, pos, 2) == "\\u") {
						lo = hexval(substr(s, pos + 2, 4))
						if (lo >= 56320 && lo < 57344) { cp = 65536 + (cp - 55296) * 1024 + (lo - 56320); pos += 6 }
					}
					if (cp > 0) out = out utf8(cp)
				} else out = out e
			}
			fail()
		}
		function found(path, v, t) { if (path == want) { hit = 1; result = v; kind = t } }
		function value(path,    c, start, v) {
			ws(); c = substr(s, pos, 1)
			if (c == "{") { object(path); return }
			if (c == "[") { array(path); return }
			if (c == "\"") { v = str(); found(path, v, "string"); return }
			start = pos
			while (pos <= n && index(",}] \t\r\n", substr(s, pos, 1)) == 0) pos++
			v = substr(s, start, pos - start)
			if (v == "") fail()
			found(path, v, v == "null" ? "null" : "literal")
		}
		function object(path,    key, c, names) {
			pos++; ws(); names = ""
			if (substr(s, pos, 1) == "}") { pos++; found(path, "", "object"); return }
			while (1) {
				ws(); if (substr(s, pos, 1) != "\"") fail()
				key = str(); names = names key "\n"
				ws(); if (substr(s, pos, 1) != ":") fail(); pos++
				value(path == "" ? key : path "." key)
				ws(); c = substr(s, pos, 1); pos++
				if (c == "}") { found(path, names, "object"); return }
				if (c != ",") fail()
			}
		}
		function array(path,    c, i) {
			pos++; ws(); i = 0
			if (substr(s, pos, 1) == "]") { pos++; return }
			while (1) {
				value(path "." i); i++
				ws(); c = substr(s, pos, 1); pos++
				if (c == "]") return
				if (c != ",") fail()
			}
		}
		{ s = s $0 "\n" }
		END {
			if (bad) exit 2
			n = length(s); pos = 1
			value("")
			if (bad) exit 2
			if (!hit || kind == "null") exit 1
			if (mode == "keys") { if (kind != "object") exit 1; printf "%s", result; exit 0 }
			if (kind == "object") exit 1
			printf "%s", result
		}'
}

# api METHOD PATH [BODY_FILE] [auth]: one call to edgejoin's node API; the body lands in $RESP and
# the status in HTTP_STATUS (000 when the server could not be reached, or its certificate is not
# from edgejoin's CA). Only https, only edgejoin's CA: the bootstrap token and the credential
# never cross the LAN in clear, and nobody else's certificate is believed. Secrets travel in files
# (curl -H @file, --data-binary @file), never on a command line other users can read.
api() {
	method=$1
	path=$2
	body=${3:-}
	auth=${4:-}
	set -- -sS -o "$RESP" -w '%{http_code}' --connect-timeout 10 --max-time 120 --proto =https --cacert "$CA_FILE" \
		-X "$method" -H 'Accept: application/json'
	if [ -n "$body" ]; then set -- "$@" -H 'Content-Type: application/json' --data-binary "@$body"; fi
	if [ "$auth" = auth ]; then set -- "$@" -H "@$STATE_DIR/auth-header"; fi
	: >"$RESP"
	HTTP_STATUS=$(curl "$@" "$NODE_URL$path") || HTTP_STATUS=000
	case $HTTP_STATUS in '' | *[!0-9]*) HTTP_STATUS=000 ;; esac
}

# The server's error code and message from $RESP, for the log.
api_error() {
	code=$(json_get error <"$RESP") || code="http_$HTTP_STATUS"
	message=$(json_get message <"$RESP") || message=""
	printf '%s%s' "$code" "${message:+: $message}"
}

# Seconds to wait: a number of seconds no lower than 1 and no higher than POLL_CAP.
bounded_wait() {
	case ${1:-} in '' | *[!0-9]*) w=5 ;; *) w=$1 ;; esac
	[ "$w" -ge 1 ] || w=1
	[ "$w" -le "$POLL_CAP" ] || w=$POLL_CAP
	printf '%s' "$w"
}

backoff=2
transient_wait() {
	log "$1; retrying in ${backoff}s"
	sleep "$backoff"
	backoff=$((backoff * 2))
	[ "$backoff" -le "$POLL_CAP" ] || backoff=$POLL_CAP
}

write_auth_header() {
	printf 'Authorization: Bearer %s\n' "$(state_value credential)" >"$STATE_DIR/auth-header"
}

# First boot: trade the bootstrap token for a node credential. Later boots skip this.
enroll() {
	token=$(state_value bootstrap-token) ||
		die 3 "no node credential and no bootstrap token in $STATE_DIR: reinstall the machine to get a new token"
	facts_uuid=""
	if [ -r "$DMI_DIR/product_uuid" ]; then
		facts_uuid=$(tr 'A-F' 'a-f' <"$DMI_DIR/product_uuid" | tr -d '\n')
		printf '%s' "$facts_uuid" | grep -Eq '^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$' || facts_uuid=""
	fi
	facts_serial=""
	[ -r "$DMI_DIR/product_serial" ] && facts_serial=$(tr -cd ' -#%-~' <"$DMI_DIR/product_serial" | head -c 64)
	facts_ip=$(hostname -I 2>/dev/null | tr ' ' '\n' | grep -E '^[0-9]{1,3}(\.[0-9]{1,3}){3}$' | head -n 1) || facts_ip=""
	facts_hostname=$(hostname 2>/dev/null | grep -E '^[A-Za-z0-9][A-Za-z0-9.-]{0,252}$') || facts_hostname=""
	facts_arch=$(uname -m | tr 'A-Z' 'a-z' | grep -E '^[a-z0-9_]{1,16}$') || facts_arch=""
	facts_cpus=$(getconf _NPROCESSORS_ONLN 2>/dev/null | grep -E '^[0-9]+$') || facts_cpus=""
	facts_memory=$(awk '/^MemTotal:/ { printf "%d", $2 * 1024 }' /proc/meminfo 2>/dev/null | grep -E '^[0-9]+$') || facts_memory=""
	{
		printf '{"token":%s,"mac":%s' "$(json_str "$token")" "$(json_str "$MAC")"
		[ -n "$facts_hostname" ] && printf ',"hostname":%s' "$(json_str "$facts_hostname")"
		[ -n "$facts_arch" ] && printf ',"arch":%s' "$(json_str "$facts_arch")"
		[ -n "$facts_uuid" ] && printf ',"uuid":%s' "$(json_str "$facts_uuid")"
		[ -n "$facts_serial" ] && printf ',"serial":%s' "$(json_str "$facts_serial")"
		[ -n "$facts_ip" ] && printf ',"ip":%s' "$(json_str "$facts_ip")"
		printf ',"facts":{"kernel":%s,"agent":"edgejoin-agent/1"' "$(json_str "$(uname -r)")"
		[ -n "$facts_cpus" ] && printf ',"cpu_count":%s' "$facts_cpus"
		[ -n "$facts_memory" ] && printf ',"memory_bytes":%s' "$facts_memory"
		printf '}}'
	} >"$STATE_DIR/enroll.json"
	while :; do
		api POST /api/v1/enroll "$STATE_DIR/enroll.json"
		case $HTTP_STATUS in
		200 | 201)
			credential=$(json_get credential <"$RESP") || die 1 "enroll answered $HTTP_STATUS without a credential"
			printf '%s\n' "$credential" >"$STATE_DIR/credential.tmp" && mv "$STATE_DIR/credential.tmp" "$STATE_DIR/credential"
			node_id=$(json_get node_id <"$RESP") || node_id="?"
			printf '%s\n' "$node_id" >"$STATE_DIR/node-id"
			# The token is single use: once spent it only invites confusion.
			rm -f "$STATE_DIR/bootstrap-token" "$STATE_DIR/enroll.json"
			log "enrolled as node $node_id ($(json_get state <"$RESP" || echo pending))"
			return 0
			;;
		400 | 401 | 403 | 404 | 409 | 422)
			rm -f "$STATE_DIR/enroll.json"
			die 3 "enrollment refused: $(api_error)"
			;;
		*) transient_wait "enroll failed (HTTP $HTTP_STATUS)" ;;
		esac
	done
}

# Report a progress event; best effort for interim events, insisted on for `ready`.
report() {
	type=$1
	detail=${2:-}
	ca_hash=${3:-}
	{
		printf '{"type":%s' "$(json_str "$type")"
		[ -n "$detail" ] && printf ',"detail":%s' "$(json_str "$detail")"
		[ -n "$ca_hash" ] && printf ',"ca_hash":%s' "$(json_str "$ca_hash")"
		printf '}'
	} >"$STATE_DIR/event.json"
	tries=0
	while [ "$tries" -lt 5 ]; do
		api POST /api/v1/node/events "$STATE_DIR/event.json" auth
		case $HTTP_STATUS in
		2??) return 0 ;;
		403) die 0 "event $type refused, stopping: $(api_error)" ;;
		401) die 3 "event $type refused, credential no longer valid: $(api_error)" ;;
		# A CA hash that is not the cluster's (two clusters formed): retrying cannot fix it; an admin must look.
		409 | 422) die 3 "event $type refused by the server, stopping for an admin to look: $(api_error)" ;;
		esac
		tries=$((tries + 1))
		sleep "$tries"
	done
	log "could not report $type (HTTP $HTTP_STATUS)"
	return 1
}

# Poll the node config until the server hands out a role; 403 stops the agent for good.
wait_for_config() {
	backoff=2
	while :; do
		api GET /api/v1/node/config "" auth
		case $HTTP_STATUS in
		200) return 0 ;;
		202)
			backoff=2
			reason=$(json_get reason <"$RESP") || reason="waiting"
			wait=$(bounded_wait "$(json_get retry_after <"$RESP" || true)")
			printf '%s\n' "$reason" >"$STATE_DIR/status"
			log "waiting ($reason); next poll in ${wait}s"
			sleep "$wait"
			;;
		403)
			why=$(api_error)
			printf 'stopped %s\n' "$why" >"$STATE_DIR/status"
			die 0 "stopped by the server: $why"
			;;
		401) die 3 "node credential refused: $(api_error)" ;;
		*) transient_wait "config poll failed (HTTP $HTTP_STATUS)" ;;
		esac
	done
}

# Files from edgejoin's node URL are checked against its CA; others (get.k3s.io) against the system's.
download() {
	case $1 in
	"$NODE_URL"/*) set -- "$1" "$2" --cacert "$CA_FILE" ;;
	*) set -- "$1" "$2" ;;
	esac
	url=$1
	out=$2
	shift 2
	curl -fsS --connect-timeout 10 --max-time 1800 "$@" -o "$out.tmp" "$url" && mv "$out.tmp" "$out"
}

# Write the k3s config, fetch and run the install with the env the server gave.
install_k3s() {
	cp "$RESP" "$STATE_DIR/config.json"
	role=$(json_get role <"$STATE_DIR/config.json") || die 1 "config without a role"
	script_url=$(json_get install.script_url <"$STATE_DIR/config.json") || die 1 "config without install.script_url"
	binary_url=$(json_get install.binary_url <"$STATE_DIR/config.json") || binary_url=""
	json_get config_yaml <"$STATE_DIR/config.json" >"$STATE_DIR/k3s-config.yaml" || die 1 "config without config_yaml"

	mkdir -p "$(dirname "$K3S_CONFIG")"
	cp "$STATE_DIR/k3s-config.yaml" "$K3S_CONFIG.tmp" && chmod 0600 "$K3S_CONFIG.tmp" && mv "$K3S_CONFIG.tmp" "$K3S_CONFIG" ||
		die 1 "cannot write $K3S_CONFIG"
	# The cluster's registry mirrors (air-gapped sites): written or removed with every config.
	registries="$(dirname "$K3S_CONFIG")/registries.yaml"
	if json_get registries_yaml <"$STATE_DIR/config.json" >"$STATE_DIR/registries.yaml"; then
		cp "$STATE_DIR/registries.yaml" "$registries.tmp" && chmod 0600 "$registries.tmp" && mv "$registries.tmp" "$registries" ||
			die 1 "cannot write $registries"
	else
		rm -f "$registries"
	fi
	if target=$(json_get syslog <"$STATE_DIR/config.json"); then
		case $target in *[!A-Za-z0-9.:-]*) ;; *) printf '%s\n' "$target" >"$STATE_DIR/syslog" && SYSLOG_TARGET=$target ;; esac
	fi

	digest=$(sha256sum "$STATE_DIR/config.json" | cut -d ' ' -f 1)
	if [ "$(state_value installed 2>/dev/null)" = "$digest" ] && [ -x "$BIN_DIR/k3s" ]; then
		log "k3s already installed with this config ($role)"
		return 0
	fi

	report installing "role $role"
	download "$script_url" "$STATE_DIR/k3s-install.sh" || {
		report failed "cannot download the install script"
		die 1 "cannot download $script_url"
	}
	# Air-gap images go where k3s imports them at start, before k3s ever starts.
	images_url=$(json_get install.airgap_images_url <"$STATE_DIR/config.json") || images_url=""
	if [ -n "$images_url" ]; then
		mkdir -p "$K3S_DATA/agent/images"
		download "$images_url" "$K3S_DATA/agent/images/${images_url##*/}" || {
			report failed "cannot download the k3s air-gap images"
			die 1 "cannot download $images_url"
		}
	fi
	mkdir -p "$BIN_DIR"
	if [ -n "$binary_url" ]; then
		download "$binary_url" "$BIN_DIR/k3s" && chmod 0755 "$BIN_DIR/k3s" || {
			report failed "cannot download the k3s binary"
			die 1 "cannot download $binary_url"
		}
	fi

	# Only the installer's own variables pass: a config cannot set PATH or LD_PRELOAD here.
	set -- env "INSTALL_K3S_BIN_DIR=$BIN_DIR"
	for name in $(json_get install.env keys <"$STATE_DIR/config.json" || true); do
		case $name in
		INSTALL_K3S_* | K3S_*)
			case $name in *[!A-Z0-9_]*) continue ;; esac
			set -- "$@" "$name=$(json_get "install.env.$name" <"$STATE_DIR/config.json" || true)"
			;;
		*) log "ignoring install env $name" ;;
		esac
	done
	if ! "$@" sh "$STATE_DIR/k3s-install.sh" >"$STATE_DIR/k3s-install.log" 2>&1; then
		report failed "k3s install failed: $(tail -n 5 "$STATE_DIR/k3s-install.log")"
		die 1 "k3s install failed; see $STATE_DIR/k3s-install.log"
	fi
	printf '%s\n' "$digest" >"$STATE_DIR/installed"
}

k3s_bin() {
	if [ -x "$BIN_DIR/k3s" ]; then printf '%s' "$BIN_DIR/k3s"; else printf 'k3s'; fi
}

# Servers: the API server's /readyz and the cluster CA on disk; agents: the kubelet's health.
k3s_ready() {
	case $role in
	init | server)
		"$(k3s_bin)" kubectl get --raw=/readyz >/dev/null 2>&1 && [ -s "$K3S_DATA/server/tls/server-ca.crt" ]
		;;
	*) curl -fsS --max-time 5 -o /dev/null "$KUBELET_HEALTHZ" ;;
	esac
}

wait_until_ready() {
	waited=0
	until k3s_ready; do
		if [ "$waited" -ge "$READY_TIMEOUT" ]; then
			report failed "k3s not ready ${READY_TIMEOUT}s after install"
			die 1 "k3s not ready after ${READY_TIMEOUT}s"
		fi
		sleep "$READY_INTERVAL"
		waited=$((waited + READY_INTERVAL))
	done
}

# The init server hands edgejoin the cluster admin's kubeconfig, which admins then fetch with
# `edgejoin clusters kubeconfig` (pointed at the registration address). Best effort: the cluster
# works without it; only that shortcut is missing.
upload_kubeconfig() {
	[ -s "$KUBECONFIG_FILE" ] || {
		log "no $KUBECONFIG_FILE to hand edgejoin"
		return 0
	}
	tries=0
	while [ "$tries" -lt 5 ]; do
		HTTP_STATUS=$(curl -sS -o "$RESP" -w '%{http_code}' --connect-timeout 10 --max-time 60 --proto =https --cacert "$CA_FILE" \
			-X PUT -H 'Content-Type: application/yaml' -H "@$STATE_DIR/auth-header" --data-binary "@$KUBECONFIG_FILE" \
			"$NODE_URL/api/v1/node/kubeconfig") || HTTP_STATUS=000
		case $HTTP_STATUS in
		2??)
			log "handed edgejoin the cluster's kubeconfig"
			return 0
			;;
		4??)
			log "edgejoin refused the kubeconfig: $(api_error)"
			return 0
			;;
		esac
		tries=$((tries + 1))
		sleep "$tries"
	done
	log "could not hand edgejoin the kubeconfig (HTTP $HTTP_STATUS)"
}

main() {
	mkdir -p "$STATE_DIR" && chmod 0700 "$STATE_DIR" || die 1 "cannot use $STATE_DIR"
	if [ -e "$STATE_DIR/joined" ]; then
		log "already joined; nothing to do"
		exit 0
	fi
	NODE_URL=$(state_value node-url) || die 3 "no node URL in $STATE_DIR/node-url: reinstall the machine with edgejoin's user-data"
	# Plain http would put the bootstrap token and the node credential on the LAN in clear.
	case $NODE_URL in https://?*) ;; *) die 3 "the node URL must be https://, refusing $NODE_URL" ;; esac
	NODE_URL=${NODE_URL%/}
	CA_FILE="$STATE_DIR/ca.pem"
	grep -q '^-----BEGIN CERTIFICATE-----' "$CA_FILE" 2>/dev/null || die 3 "no CA certificate in $CA_FILE: reinstall the machine with edgejoin's user-data"
	MAC=$(state_value mac) || die 3 "no MAC in $STATE_DIR/mac"

	[ -s "$STATE_DIR/credential" ] || enroll
	write_auth_header
	wait_for_config
	install_k3s
	report k3s-started "role $role" || die 1 "could not report k3s-started"
	wait_until_ready
	ca_hash=""
	case $role in init | server) ca_hash=$(sha256sum "$K3S_DATA/server/tls/server-ca.crt" | cut -d ' ' -f 1) ;; esac
	report ready "role $role" "$ca_hash" || die 1 "could not report ready"
	[ "$role" != init ] || upload_kubeconfig
	printf 'joined %s\n' "$role" >"$STATE_DIR/status"
	: >"$STATE_DIR/joined"
	log "node is ready as $role"
}

# Tests load the functions alone with EDGEJOIN_AGENT_FUNCTIONS_ONLY=1.
[ "${EDGEJOIN_AGENT_FUNCTIONS_ONLY:-}" = 1 ] || main "$@"
