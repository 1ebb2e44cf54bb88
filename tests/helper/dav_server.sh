#!/bin/bash
# dav_server.sh start|stop — nginx with its DAV modules on 127.0.0.1, as a
# WebDAV remote for tests and benchmarks.
#
#   eval "$(tests/helper/dav_server.sh start)"   # prints export lines
#   tests/helper/dav_server.sh stop [DIR]        # DIR defaults to $MLX_TEST_DAV_DIR
#
# start makes a temp dir (root/ is the served tree, private/ in it wants
# basic auth, bearer/ a token), picks a free port and prints
# MLX_TEST_DAV_URL, MLX_TEST_DAV_PRIVATE_URL, MLX_TEST_DAV_USER,
# MLX_TEST_DAV_PASSWORD, MLX_TEST_DAV_BEARER_URL, MLX_TEST_DAV_TOKEN,
# MLX_TEST_DAV_ROOT and MLX_TEST_DAV_DIR. It exits 77 when nginx or its
# dav_ext module is missing, 1 when nginx will not start. stop kills the
# server and removes the temp dir.
set -eu

module=/usr/lib/nginx/modules/ngx_http_dav_ext_module.so

free_port() {
	python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

start() {
	nginx=$(command -v nginx || true)
	[ -z "$nginx" ] && [ -x /usr/sbin/nginx ] && nginx=/usr/sbin/nginx
	if [ -z "$nginx" ] || [ ! -f "$module" ]; then
		echo "dav_server.sh: nginx with the dav_ext module is not installed (tools/install-deps.sh)" >&2
		exit 77
	fi
	dir=$(mktemp -d "${TMPDIR:-/tmp}/mlx-dav.XXXXXX")
	mkdir -p "$dir/root/private" "$dir/root/bearer" "$dir/tmp"
	password=$(openssl rand -hex 12)
	token=$(openssl rand -hex 16)
	printf 'mlx:%s\n' "$(openssl passwd -apr1 "$password")" >"$dir/htpasswd"
	# Workers run as the user that starts nginx, so they can write the
	# temp tree (as root, nginx would switch to www-data otherwise).
	user_line=""
	[ "$(id -u)" -eq 0 ] && user_line="user root;"
	for _ in 1 2 3 4 5; do
		port=$(free_port)
		cat >"$dir/nginx.conf" <<CONF
load_module $module;
$user_line
daemon on;
pid $dir/nginx.pid;
error_log $dir/error.log;
worker_processes 1;
events { worker_connections 256; }
http {
  client_body_temp_path $dir/tmp;
  proxy_temp_path $dir/tmp;
  fastcgi_temp_path $dir/tmp;
  uwsgi_temp_path $dir/tmp;
  scgi_temp_path $dir/tmp;
  access_log off;
  client_max_body_size 0;
  keepalive_requests 100000;
  server {
    listen 127.0.0.1:$port;
    root $dir/root;
    location / {
      dav_methods PUT DELETE MKCOL COPY MOVE;
      dav_ext_methods PROPFIND OPTIONS;
      create_full_put_path on;
      dav_access user:rw group:r all:r;
    }
    location /bearer/ {
      if (\$http_authorization != "Bearer $token") { return 401; }
      dav_methods PUT DELETE MKCOL COPY MOVE;
      dav_ext_methods PROPFIND OPTIONS;
      create_full_put_path on;
      dav_access user:rw group:r all:r;
    }
    location /private/ {
      auth_basic "mlx";
      auth_basic_user_file $dir/htpasswd;
      dav_methods PUT DELETE MKCOL COPY MOVE;
      dav_ext_methods PROPFIND OPTIONS;
      create_full_put_path on;
      dav_access user:rw group:r all:r;
    }
  }
}
CONF
		if "$nginx" -c "$dir/nginx.conf" -e "$dir/error.log" 2>>"$dir/start.log"; then
			for _ in $(seq 50); do
				[ -s "$dir/nginx.pid" ] && break
				sleep 0.1
			done
			echo "export MLX_TEST_DAV_DIR='$dir'"
			echo "export MLX_TEST_DAV_ROOT='$dir/root'"
			echo "export MLX_TEST_DAV_URL='http://127.0.0.1:$port/'"
			echo "export MLX_TEST_DAV_PRIVATE_URL='http://127.0.0.1:$port/private/'"
			echo "export MLX_TEST_DAV_USER='mlx'"
			echo "export MLX_TEST_DAV_PASSWORD='$password'"
			echo "export MLX_TEST_DAV_BEARER_URL='http://127.0.0.1:$port/bearer/'"
			echo "export MLX_TEST_DAV_TOKEN='$token'"
			return 0
		fi
		# the port was taken between free_port and listen: try another
	done
	echo "dav_server.sh: nginx did not start:" >&2
	cat "$dir/start.log" "$dir/error.log" >&2 2>/dev/null || true
	rm -rf "$dir"
	exit 1
}

stop() {
	dir=${1:-${MLX_TEST_DAV_DIR:-}}
	case "$dir" in
	*/mlx-dav.*) ;;
	*) echo "dav_server.sh stop: not a directory made by start: '$dir'" >&2; exit 2 ;;
	esac
	if [ -s "$dir/nginx.pid" ]; then
		pid=$(cat "$dir/nginx.pid")
		kill "$pid" 2>/dev/null || true
		for _ in $(seq 50); do
			kill -0 "$pid" 2>/dev/null || break
			sleep 0.1
		done
		kill -9 "$pid" 2>/dev/null || true
	fi
	rm -rf "$dir"
}

case "${1:-}" in
start) start ;;
stop) stop "${2:-}" ;;
*) echo "usage: dav_server.sh start|stop [DIR]" >&2; exit 2 ;;
esac
