#!/usr/bin/env bash
# deps.sh - installs the Debian packages that building, running and testing need.
#
# Usage: scripts/deps.sh [--no-update] [EXTRA_PACKAGE...]
#   Silent and fast when every package is installed already. Otherwise
#   apt-get update (unless --no-update) and apt-get install the missing ones:
#   as root directly, as another user through sudo (which may ask for a
#   password); without sudo it prints the command to run and exits 1.
# Extra packages come from the arguments and from PAYMENTS_EXTRA_PACKAGES
# (space-separated), e.g. .ci/run adds docker-compose.
set -euo pipefail

# The one list of what make run and make test need. Tools of one target come
# as arguments from its make file instead (mk/fuzz.mk: clang; mk/bench.mk: wrk).
packages=(
	build-essential
	pkg-config
	libpq-dev
	libcivetweb-dev
	libjansson-dev
	libsodium-dev
	libcmocka-dev
	libcurl4-openssl-dev
	libssl-dev
	libnats-dev
	postgresql-15
	postgresql-15-pgtap
	postgresql-15-auto-failover
	libtap-parser-sourcehandler-pgtap-perl
	nats-server
	python3
	python3-stripe
	curl
)

update=1
if [ "${1:-}" = --no-update ]; then
	update=0
	shift
fi
# Word splitting of PAYMENTS_EXTRA_PACKAGES is wanted: it is a list.
# shellcheck disable=SC2206
packages+=("$@" ${PAYMENTS_EXTRA_PACKAGES:-})

# One dpkg-query for the whole list; packages it does not know are missing too.
installed=$(dpkg-query -W -f='${db:Status-Abbrev} ${Package}\n' "${packages[@]}" 2>/dev/null |
	awk '$1 == "ii" { print $2 }' || true)
missing=()
for p in "${packages[@]}"; do
	grep -qxF -- "${p%%:*}" <<<"$installed" || missing+=("$p")
done
[ ${#missing[@]} -eq 0 ] && exit 0

as_root=()
if [ "$(id -u)" != 0 ]; then
	if ! command -v sudo >/dev/null; then
		echo "deps.sh: missing packages: ${missing[*]}" >&2
		echo "Install them as root with:" >&2
		echo "  apt-get update && DEBIAN_FRONTEND=noninteractive apt-get install -y ${missing[*]}" >&2
		exit 1
	fi
	as_root=(sudo env DEBIAN_FRONTEND=noninteractive)
fi
echo "deps.sh: installing ${missing[*]}" >&2
export DEBIAN_FRONTEND=noninteractive
if [ "$update" = 1 ]; then
	"${as_root[@]}" apt-get update
fi
"${as_root[@]}" apt-get install -y --no-install-recommends "${missing[@]}"
