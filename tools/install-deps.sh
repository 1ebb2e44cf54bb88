#!/bin/sh
# Installs the Debian/Ubuntu packages mlx needs to build, test and benchmark.
# Runs apt-get as root, through sudo when not root already.
# --bench also installs what only the benchmarks in bench/ need.
set -eu
packages="
  meson ninja-build pkg-config gcc python3
  liblua5.4-dev lua5.4 libsqlite3-dev sqlite3 libcurl4-openssl-dev libgit2-dev
  libssl-dev libjansson-dev
  libcmocka-dev lua-unit valgrind
  clang libclang-rt-14-dev
  git openssl
  libpq-dev postgresql
  strace
  gnuplot-nox libxml2-utils
  rclone time
  libcsv-dev
  libxml2-dev nginx libnginx-mod-http-dav-ext nodejs
  libmicrohttpd-dev libjs-chart.js graphviz chromium chromium-driver python3-selenium
  slurm-wlm munge
"
# bench/check.sh: pandas to compare mlx.check with.
if [ "${1:-}" = "--bench" ]; then
  packages="$packages python3-pandas"
fi
# bench/scale.sh: hyperfine to time, make as the peer of the pipeline figures.
if [ "${1:-}" = "--bench" ]; then
  packages="$packages hyperfine make"
fi
# bench/timeline.sh: perf to trace the scheduler's events of a first run.
if [ "${1:-}" = "--bench" ]; then
  packages="$packages linux-perf"
fi
if [ "$(id -u)" -eq 0 ]; then sudo=""; else sudo="sudo"; fi
export DEBIAN_FRONTEND=noninteractive
# shellcheck disable=SC2086
if ! dpkg-query -W -f='${Status}\n' $packages 2>/dev/null | grep -qv '^install ok installed$' \
   && [ "$(dpkg-query -W -f='${Status}\n' $packages 2>/dev/null | wc -l)" -eq "$(echo $packages | wc -w)" ]; then
  : # every package is installed already
else
  $sudo apt-get update -qq
  # shellcheck disable=SC2086
  $sudo apt-get install -y -qq --no-install-recommends $packages >/dev/null
fi

# s3rver, the S3 server of the remote tests, from npm at the version pinned
# in tools/node/package-lock.json, into tools/node/node_modules (git-ignored).
# Debian's nodejs comes without npm (its own package); other builds of
# node bring theirs, which the npm package would conflict with.
command -v npm >/dev/null || $sudo apt-get install -y -qq --no-install-recommends npm >/dev/null
node_dir=$(cd "$(dirname "$0")" && pwd)/node
if [ ! -x "$node_dir/node_modules/.bin/s3rver" ]; then
  npm ci --prefix "$node_dir" --no-audit --no-fund --loglevel=error >/dev/null
fi
