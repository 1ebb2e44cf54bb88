#!/bin/sh
# pg_server.sh start DIR | stop DIR — a throwaway PostgreSQL 15 for tests.
#
# start: runs initdb into DIR/data as an unprivileged user (postgres, as the
# server refuses to run as root), starts postgres listening only on a unix
# socket in DIR/sock (no TCP port, so parallel tests never clash), creates
# the database "mlx" with a superuser role for the calling user, and prints
# shell export lines: PGHOST, PGDATABASE and MLX_PG_URI (a libpq URI for the
# socket). Exits 77 with a message on stderr when PostgreSQL is missing.
# stop: stops that server at once and removes DIR/data.
set -eu
cmd=${1:?usage: pg_server.sh start|stop DIR}
dir=${2:?usage: pg_server.sh start|stop DIR}
bin=${MLX_PG_BIN:-}
if [ -z "$bin" ]; then
	for v in 17 16 15; do
		if [ -x "/usr/lib/postgresql/$v/bin/postgres" ]; then bin=/usr/lib/postgresql/$v/bin; break; fi
	done
fi
if [ -z "$bin" ] || [ ! -x "$bin/initdb" ]; then
	echo "no PostgreSQL server (apt-get install postgresql)" >&2
	exit 77
fi
as_server() { # runs a server command as the unprivileged user when root
	if [ "$(id -u)" -eq 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi
}
case $cmd in
start)
	mkdir -p "$dir/sock"
	# A socket path is limited to ~107 bytes: keep it short and absolute.
	dir=$(cd "$dir" && pwd)
	if [ "$(id -u)" -eq 0 ]; then chown postgres "$dir" "$dir/sock"; fi
	as_server "$bin/initdb" -D "$dir/data" -A trust -U postgres --locale=C -E UTF8 >"$dir/initdb.log" 2>&1 ||
		{ cat "$dir/initdb.log" >&2; exit 1; }
	as_server "$bin/pg_ctl" -D "$dir/data" -l "$dir/server.log" -w -t 60 \
		-o "-k $dir/sock -c listen_addresses='' -c fsync=off -c max_connections=200" start >/dev/null ||
		{ cat "$dir/server.log" >&2; exit 1; }
	me=$(id -un)
	"$bin/psql" -qX -h "$dir/sock" -U postgres -d postgres -v ON_ERROR_STOP=1 \
		-c "CREATE ROLE \"$me\" SUPERUSER LOGIN" -c "CREATE DATABASE mlx OWNER \"$me\"" >/dev/null 2>&1 ||
		"$bin/psql" -qX -h "$dir/sock" -U postgres -d postgres -v ON_ERROR_STOP=1 \
			-c "CREATE DATABASE mlx OWNER \"$me\"" >/dev/null
	echo "export PGHOST='$dir/sock' PGDATABASE=mlx PGUSER='$me'"
	echo "export MLX_PG_URI='postgresql:///mlx?host=$dir/sock'"
	echo "export MLX_PG_BIN='$bin'"
	;;
stop)
	if [ -d "$dir/data" ]; then
		as_server "$bin/pg_ctl" -D "$dir/data" -m immediate -w stop >/dev/null 2>&1 || true
		rm -rf "$dir/data"
	fi
	;;
*)
	echo "usage: pg_server.sh start|stop DIR" >&2
	exit 2
	;;
esac
