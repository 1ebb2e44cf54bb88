#!/usr/bin/env bash
# Remotes that cannot work, as a user meets them: a WebDAV URL whose path
# is a file (or has a file above it), a server that wants credentials or
# refuses the ones given, https:// to a plain HTTP port, a server that is
# not listening; an S3 bucket that does not exist, an endpoint that is not
# S3, an access key the server does not know. Each is one line naming
# what to fix, with its documented exit code (2 for what a retry cannot
# fix, found at `mlx remote add` already; 1 for a server that does not
# answer), in bounded time (no retries where they cannot help), and never
# shows a password or a secret key.
#
# Starts nginx (tests/helper/dav_server.sh) and s3rver (s3_server.sh) on
# free ports of 127.0.0.1; a TAP skip when either is not installed.
. "$(dirname "$0")/tap.sh"

dav=$MLX_SOURCE_ROOT/tests/helper/dav_server.sh
s3=$MLX_SOURCE_ROOT/tests/helper/s3_server.sh
dav_dir="" s3_dir=""
trap '[ -n "$dav_dir" ] && "$dav" stop "$dav_dir"; [ -n "$s3_dir" ] && "$s3" stop "$s3_dir"; rm -rf "$TEST_DIR" "$TAP_CAPTURE"' EXIT
trap 'exit 130' INT TERM
for helper in "$dav" "$s3"; do
	exports=$("$helper" start)
	rc=$?
	if [ "$rc" -eq 77 ]; then
		echo "1..0 # SKIP no ${helper##*/} server (tools/install-deps.sh installs nginx and s3rver)"
		exit 0
	fi
	[ "$rc" -eq 0 ] || { echo "Bail out! $helper start failed ($rc)"; exit 1; }
	eval "$exports"
	dav_dir=${MLX_TEST_DAV_DIR:-} s3_dir=${MLX_TEST_S3_DIR:-}
done
dav_port=${MLX_TEST_DAV_URL#http://127.0.0.1:}
dav_port=${dav_port%/}
s3_port=${MLX_TEST_S3_ENDPOINT##*:}
closed=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')

# timed mlx ARGS… — as mlx, and sets SECS to the seconds it took. Five
# retries wait at least 7.75 s (mlx.http's backoff, 0.5 s doubling, with
# jitter of half to all of it): "under 7 s" means no retries, with room
# for a loaded machine.
timed() {
	local start=$EPOCHREALTIME
	mlx "$@"
	SECS=$(awk -v a="$start" -v b="$EPOCHREALTIME" 'BEGIN { printf "%d", b - a }')
}
# one_line DESCRIPTION — the last command's stderr is one line.
one_line() { is "$(printf '%s\n' "$ERR" | wc -l)" 1 "$1"; }
# put_remote NAME URL [KEY=VALUE…] — writes a remote into remotes.json as
# a teammate's commit would, past remote add's check.
put_remote() {
	PUT_NAME=$1 PUT_URL=$2 PUT_OPTIONS="${*:3}" "$MLX" lua -e '
local config = require "mlx.remote.config"
local root = require("mlx.project").find_root()
local doc = assert(config.load(root))
local options = {}
for k, v in os.getenv("PUT_OPTIONS"):gmatch("([^%s=]+)=(%S*)") do options[k] = v end
doc.remotes[os.getenv("PUT_NAME")] = { url = os.getenv("PUT_URL"), options = options }
doc.default = doc.default or os.getenv("PUT_NAME")
assert(config.save(root, doc))'
}

mkdir -p "$TEST_DIR/a" && cd "$TEST_DIR/a" || exit 1
git init -q . && "$MLX" init >/dev/null
printf 'id,label\n1,a\n' >data.csv
"$MLX" add data.csv >/dev/null
# A clone's state: the same pins, an empty store.
mkdir -p "$TEST_DIR/b" && cd "$TEST_DIR/b" || exit 1
git init -q . && "$MLX" init >/dev/null
cp "$TEST_DIR/a/mlx.lock" .
cd "$TEST_DIR/a" || exit 1

# ---- WebDAV: a file where the collection should be -------------------------
printf 'not a collection\n' >"$MLX_TEST_DAV_ROOT/afile"
timed remote add dfile "${MLX_TEST_DAV_URL}afile"
is "$RC" 2 "remote add of a WebDAV URL that is a file is exit 2"
is "$ERR" "mlx: error: remote dfile: ${MLX_TEST_DAV_URL}afile is a file on the server, not a collection (a directory); point the remote at a collection: mlx remote add --force dfile URL" \
	"in one line saying so and what to do"
[ ! -e .mlx/remotes.json ] || ! grep -q dfile .mlx/remotes.json
is "$?" 0 "and nothing is saved"
mlx remote add dabove "${MLX_TEST_DAV_URL}afile/store/"
is "$RC" 2 "a WebDAV URL below a file is exit 2 too"
like "$ERR" "^mlx: error: remote dabove: ${MLX_TEST_DAV_URL}afile is a file on the server, not a collection \(a directory\) above the remote's URL; " \
	"naming the file"
# Added while the path was free; a file took its place later.
mlx remote add later "${MLX_TEST_DAV_URL}later"
is "$RC" 0 "a WebDAV URL that does not exist yet is added (a push makes it)"
printf 'x\n' >"$MLX_TEST_DAV_ROOT/later"
timed push -r later
is "$RC" 2 "a push to a WebDAV URL that is a file is exit 2"
one_line "with one line"
like "$ERR" "^mlx: error: remote later: ${MLX_TEST_DAV_URL}later is a file on the server, not a collection" "that names the file"
[ "$SECS" -lt 7 ]
is "$?" 0 "at once, without retrying the server's 500 ($SECS s)"
cp .mlx/remotes.json "$TEST_DIR/b/.mlx/"
cd "$TEST_DIR/b" || exit 1
timed pull -r later
is "$RC" 2 "a pull from it is exit 2"
like "$ERR" "^mlx: error: remote later: ${MLX_TEST_DAV_URL}later is a file on the server" \
	"with the same line, not 'the object is not on the remote'"
one_line "in one line"
rm "$MLX_TEST_DAV_ROOT/later"
cd "$TEST_DIR/a" || exit 1
mlx push -r later
is "$RC" 0 "once the file is gone, a push to that URL works"
cd "$TEST_DIR/b" || exit 1
mlx pull -r later
is "$RC" 0 "and so does the pull"
cd "$TEST_DIR/a" || exit 1

# A server that cannot store a PUT (here: a file where its tmp/ should be;
# on a real server, most often a directory its user may not write)
# answers 500: retried, then one line saying where to look.
mkdir -p "$MLX_TEST_DAV_ROOT/ro" && printf 'x\n' >"$MLX_TEST_DAV_ROOT/ro/tmp"
mlx remote add ro "${MLX_TEST_DAV_URL}ro/"
timed push -r ro
is "$RC" 1 "a push to a server that cannot store it is exit 1, after the retries"
one_line "in one line"
like "$ERR" "^mlx: error: remote ro: objects/.*: HTTP 500 \(the server could not store a PUT: its error log says why; often the user it runs as may not write the directory it serves\); check that the server is up" \
	"saying where to look"
"$MLX" remote remove ro >/dev/null

# ---- WebDAV: credentials ------------------------------------------------------
mlx remote add priv "$MLX_TEST_DAV_PRIVATE_URL"
is "$RC" 2 "remote add of a WebDAV server that wants credentials, without them, is exit 2"
one_line "in one line"
like "$ERR" "the server refused access \(HTTP 401\); the server wants credentials: set the options user and password \(or token\) of remote priv in \.mlx/config\.local\.lua .* or in MLX_REMOTE_PRIV_USER and MLX_REMOTE_PRIV_PASSWORD$" \
	"naming config.local.lua and the variables"
MLX_REMOTE_PRIV_USER=$MLX_TEST_DAV_USER MLX_REMOTE_PRIV_PASSWORD=wrong-pass-4711 mlx remote add priv "$MLX_TEST_DAV_PRIVATE_URL"
is "$RC" 2 "a wrong password is exit 2"
like "$ERR" "refused access \(HTTP 401\); check the options user and password \(MLX_REMOTE_PRIV_USER and MLX_REMOTE_PRIV_PASSWORD, else remotes\.priv in \.mlx/config\.local\.lua\)$" \
	"naming where the credentials come from"
case "$ERR" in *wrong-pass-4711*) is shown hidden "the password is not shown" ;; *) is hidden hidden "the password is not shown" ;; esac
printf 'return { remotes = { priv = { user = "%s", password = "%s" } } }\n' "$MLX_TEST_DAV_USER" "$MLX_TEST_DAV_PASSWORD" >.mlx/config.local.lua
mlx remote add priv "$MLX_TEST_DAV_PRIVATE_URL"
is "$RC" 0 "with the credentials in config.local.lua, remote add works"
mlx push -r priv
is "$RC" 0 "and so does the push"
MLX_REMOTE_PRIV_PASSWORD=wrong-pass-4711 mlx push -r priv
is "$RC" 2 "a wrong password in the environment (which wins) is exit 2 at push"
case "$OUT$ERR" in *wrong-pass-4711* | *"$MLX_TEST_DAV_PASSWORD"*) is shown hidden "no password is shown" ;; *) is hidden hidden "no password is shown" ;; esac
rm .mlx/config.local.lua

# ---- WebDAV: https:// to plain HTTP, a server that is not listening ------------
mlx remote add tls "https://127.0.0.1:$dav_port/"
is "$RC" 2 "remote add of https:// to a plain HTTP port is exit 2"
one_line "in one line"
like "$ERR" "^mlx: error: remote tls: index/: the server does not speak TLS there \(.*\); if it serves plain HTTP, use http:// in the remote's URL \(or endpoint\)$" \
	"saying to use http://"
put_remote tls "https://127.0.0.1:$dav_port/"
timed push -r tls
is "$RC" 2 "a push to it is exit 2"
[ "$SECS" -lt 7 ]
is "$?" 0 "at once, without retries ($SECS s)"
# A server whose certificate no CA vouches for (a private CA's).
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -keyout "$TEST_DIR/key.pem" \
	-out "$TEST_DIR/cert.pem" -subj /CN=127.0.0.1 -addext subjectAltName=IP:127.0.0.1 -days 1 >/dev/null 2>&1
python3 "$MLX_SOURCE_ROOT/tests/helper/http_server.py" "$TEST_DIR/files" --tls "$TEST_DIR/cert.pem" "$TEST_DIR/key.pem" \
	>"$TEST_DIR/tls.port" 2>/dev/null &
tls_server=$!
for _ in $(seq 100); do [ -s "$TEST_DIR/tls.port" ] && break; sleep 0.1; done
timed remote add private "https://127.0.0.1:$(head -1 "$TEST_DIR/tls.port")/dav/"
kill "$tls_server" 2>/dev/null
wait "$tls_server" 2>/dev/null
is "$RC" 2 "remote add of an https:// server with an untrusted certificate is exit 2"
one_line "in one line"
like "$ERR" "^mlx: error: remote private: index/: the server's TLS certificate is not trusted \(.*\); give the option ca_file \(a private CA's PEM bundle\), or insecure=true$" \
	"naming the options that fix it"
[ "$SECS" -lt 7 ]
is "$?" 0 "without retries ($SECS s)"
# A plain HTTP server, no WebDAV: PROPFIND is not implemented (501).
python3 "$MLX_SOURCE_ROOT/tests/helper/http_server.py" "$TEST_DIR/files" >"$TEST_DIR/plain.port" 2>/dev/null &
plain_server=$!
for _ in $(seq 100); do [ -s "$TEST_DIR/plain.port" ] && break; sleep 0.1; done
timed remote add plain "http://127.0.0.1:$(head -1 "$TEST_DIR/plain.port")/files/"
kill "$plain_server" 2>/dev/null
wait "$plain_server" 2>/dev/null
is "$RC $ERR" "2 mlx: error: remote plain: index/: the server does not answer WebDAV's PROPFIND (HTTP 501): the URL must name a WebDAV collection (nginx: dav_ext_methods PROPFIND, docs/remotes.md)" \
	"remote add of a server that is not WebDAV is exit 2, in one line"
[ "$SECS" -lt 7 ]
is "$?" 0 "without retries ($SECS s)"
mlx remote add down "http://127.0.0.1:$closed/"
is "$RC" 0 "a server that is not listening may be down while it is added (exit 0)"
like "$ERR" "^mlx: remote down: index/: .*connect.*; added it without checking it$" "with a note saying so"
timed push -r down
is "$RC" 1 "a push to a server that is not listening is exit 1 (a failure of the world)"
one_line "in one line"
like "$ERR" "^mlx: error: remote down: index/: .*; check that the server is up and the URL \('mlx remote list'\), then run it again$" \
	"saying what to check"
[ "$SECS" -lt 40 ]
is "$?" 0 "after the retries of mlx.http, in bounded time ($SECS s)"
# A pull of many objects, 8 at once: the first that fails after its
# retries stops the others, rather than each retrying in turn.
mkdir -p "$TEST_DIR/many" && cd "$TEST_DIR/many" || exit 1
git init -q . && "$MLX" init >/dev/null
mkdir d && for i in $(seq 1 100); do printf '%d\n' "$i" >"d/f$i"; done
"$MLX" add d/f* >/dev/null && rm -rf d .mlx/cache/objects
"$MLX" remote add down "http://127.0.0.1:$closed/" >/dev/null 2>&1
timed pull
is "$RC" 1 "a pull of 100 objects from a server that is not listening is exit 1"
one_line "in one line"
[ "$SECS" -lt 40 ]
is "$?" 0 "in the time of one object's retries, not a hundred ($SECS s)"
mlx gc -r down
is "$RC" 1 "mlx gc -r of a server that is not listening is exit 1"
like "$ERR" "^mlx: error: remote down: index/: .*; check that the server is up and the URL \('mlx remote list'\), then run it again$" \
	"saying what to check, as push and pull do"
cd "$TEST_DIR/a" || exit 1

# ---- S3 ---------------------------------------------------------------------------
mlx remote add nob s3://no-such-bucket --option "endpoint=$MLX_TEST_S3_ENDPOINT"
is "$RC" 2 "remote add of an S3 bucket that does not exist is exit 2"
is "$ERR" "mlx: error: remote nob: the bucket 'no-such-bucket' does not exist" "in one line saying so"
put_remote nob s3://no-such-bucket "endpoint=$MLX_TEST_S3_ENDPOINT"
timed push -r nob
is "$RC $ERR" "2 mlx: error: remote nob: the bucket 'no-such-bucket' does not exist" "so is a push to it"
mlx remote add notS3 "$MLX_TEST_S3_URL" --option "endpoint=http://127.0.0.1:$dav_port"
is "$RC" 2 "an endpoint that is not an S3 server is exit 2"
one_line "in one line"
like "$ERR" "the server answered a listing of bucket '$MLX_TEST_S3_BUCKET' with HTTP 404 and no S3 error: check the option endpoint \(http://127\.0\.0\.1:$dav_port\) and path_style$" \
	"naming the endpoint to check"
mlx remote add noendpoint "$MLX_TEST_S3_URL" --option endpoint=
is "$RC" 2 "an option with an empty value is exit 2, nothing saved"
is "$ERR" "mlx: error: --option endpoint= has no value; give one, or leave the option out" \
	"saying so, rather than sending the remote to AWS"
mlx remote add s3tls "$MLX_TEST_S3_URL" --option "endpoint=https://127.0.0.1:$s3_port"
is "$RC" 2 "an https:// endpoint to a plain HTTP port is exit 2"
like "$ERR" "does not speak TLS there" "saying so"
mlx remote add s3down "$MLX_TEST_S3_URL" --option "endpoint=http://127.0.0.1:$closed"
is "$RC" 0 "an S3 endpoint that is not listening is added, with a note"
timed push -r s3down
is "$RC" 1 "a push to it is exit 1"
[ "$SECS" -lt 40 ]
is "$?" 0 "in bounded time ($SECS s)"
MLX_REMOTE_KEYED_ACCESS_KEY_ID=NOSUCHKEY MLX_REMOTE_KEYED_SECRET_ACCESS_KEY=secret-9876 \
	mlx remote add keyed "$MLX_TEST_S3_URL" --option "endpoint=$MLX_TEST_S3_ENDPOINT"
is "$RC" 2 "an access key the S3 server does not know is exit 2"
one_line "in one line"
like "$ERR" "refused access \(HTTP 403\) \(InvalidAccessKeyId\); check access_key_id \(from the options of remote keyed: MLX_REMOTE_KEYED_ACCESS_KEY_ID and the like, else remotes\.keyed in \.mlx/config\.local\.lua\)$" \
	"naming the credential and where it came from"
case "$ERR" in *secret-9876*) is shown hidden "the secret key is not shown" ;; *) is hidden hidden "the secret key is not shown" ;; esac
AWS_ACCESS_KEY_ID=NOSUCHKEY mlx remote add keyed "$MLX_TEST_S3_URL" --option "endpoint=$MLX_TEST_S3_ENDPOINT"
like "$ERR" "check access_key_id \(from AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY\)$" "or the AWS variables it came from"
AWS_ACCESS_KEY_ID='' AWS_SECRET_ACCESS_KEY='' HOME=$TEST_DIR mlx remote add keyed "$MLX_TEST_S3_URL" --option "endpoint=$MLX_TEST_S3_ENDPOINT"
is "$RC" 2 "no S3 credentials at all is exit 2"
like "$ERR" "no S3 credentials: set access_key_id and secret_access_key in \.mlx/config\.local\.lua \(or MLX_REMOTE_KEYED_ACCESS_KEY_ID and MLX_REMOTE_KEYED_SECRET_ACCESS_KEY\)" \
	"naming where to put them"
mkdir -p "$TEST_DIR/.aws"
printf '[team]\naws_access_key_id = S3RVER\n' >"$TEST_DIR/.aws/credentials"
AWS_ACCESS_KEY_ID='' AWS_SECRET_ACCESS_KEY='' AWS_PROFILE=team HOME=$TEST_DIR mlx remote add keyed "$MLX_TEST_S3_URL" --option "endpoint=$MLX_TEST_S3_ENDPOINT"
is "$RC $ERR" "2 mlx: error: remote keyed: the AWS profile 'team' has aws_access_key_id but no aws_secret_access_key: add it to the profile (~/.aws/credentials)" \
	"a profile with half a key pair says which half it lacks"
mlx remote list
is "$(printf '%s\n' "$OUT" | awk '{ print ($1 == "*" ? $2 : $1) }' | sort | tr '\n' ' ')" "down later nob priv s3down tls " \
	"remotes.json holds the remotes remote add accepted and those written past it, no other"

done_testing
