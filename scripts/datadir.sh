# datadir.sh - sourced by pg.sh and ha.sh: a data folder the server's user can reach.
#
# datadir_ensure DIR NAME makes DIR and, as root, hands it to the postgres user
# (created if missing: initdb refuses root). When a parent of DIR is closed to
# that user (a clone under /root, a mktemp -d folder), the data lives in
# /tmp/NAME-<hash of the repo> and DIR links there. Either way datadir_real is
# set to the real path, the one to hand the servers and their tools, since a
# path through the link would still cross the closed parent.
datadir_ensure() {
	local dir=$1 name=$2 alt
	mkdir -p "$dir"
	datadir_real=$(readlink -f "$dir")
	[ "$(id -u)" = 0 ] || return 0
	id postgres >/dev/null 2>&1 || useradd --system --home-dir /var/lib/postgresql postgres
	if ! runuser -u postgres -- test -x "$datadir_real/" 2>/dev/null; then
		alt=/tmp/$name-$(echo "$repo" | md5sum | cut -c1-12)
		mkdir -p "$alt"
		chmod 700 "$alt"
		rmdir "$dir" 2>/dev/null || true
		ln -sfn "$alt" "$dir"
		datadir_real=$(readlink -f "$dir")
	fi
	chown postgres: "$datadir_real"
}
