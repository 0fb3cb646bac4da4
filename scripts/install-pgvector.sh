#!/usr/bin/env bash
# Installs pgvector into the newest PostgreSQL under /usr/lib/postgresql (the one the dev stack
# runs), so the knowledge tools rank by embeddings in SQL there. Silent when it is installed.
#
# Debian's own package when the distribution has one (trixie, Ubuntu); otherwise (bookworm) a
# build from Debian's source tarball, checksum-verified, against the server headers of
# postgresql-server-dev-<major> unpacked into a temporary folder: that package installed would
# pull clang and LLVM (hundreds of MB) for nothing, as the build needs no JIT bitcode.
# Anything failing (no network, no compiler) says so in one line and leaves PostgreSQL as it
# was: Ferry works without pgvector, ranking in Python (docs/connic.md), so
# install-system-deps.sh goes on whatever this script's exit status.
set -euo pipefail

VERSION=0.8.0
SOURCE=http://deb.debian.org/debian/pool/main/p/pgvector/pgvector_${VERSION}.orig.tar.gz
SHA256=867a2c328d4928a5a9d6f052cd3bc78c7d60228a9b914ad32aa3db88e9de27b0

server=$(ls -d /usr/lib/postgresql/*/bin/postgres 2>/dev/null | sort -V | tail -1 || true)
[ -n "$server" ] || exit 0 # no PostgreSQL server here: nothing to extend
pg_config=$(dirname "$server")/pg_config
major=$(basename "$(dirname "$(dirname "$server")")")
[ -f "$("$pg_config" --sharedir)/extension/vector.control" ] && exit 0

step="start"
trap 'echo "pgvector: not installed ($step failed), so semantic ranking on PostgreSQL runs in Python"' ERR
SUDO=""
if [ "$(id -u)" -ne 0 ]; then
  step="finding sudo (needs root to install into PostgreSQL)"
  command -v sudo >/dev/null
  SUDO=sudo
fi
export DEBIAN_FRONTEND=noninteractive
apt_install() { $SUDO apt-get install -y -qq --no-install-recommends "$@" >/dev/null; }

echo "pgvector: installing it into PostgreSQL $major"
step="apt-get install postgresql-$major-pgvector"
if apt-cache show "postgresql-$major-pgvector" >/dev/null 2>&1; then
  apt_install "postgresql-$major-pgvector"
  exit 0
fi

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
cd "$work"
step="downloading $SOURCE"
curl -fsL --connect-timeout 10 --max-time 120 -o pgvector.tar.gz "$SOURCE"
step="checking the sha256 of $SOURCE"
echo "$SHA256  pgvector.tar.gz" | sha256sum -c --quiet -
tar xzf pgvector.tar.gz

step="downloading postgresql-server-dev-$major"
if ! apt-get download -qq "postgresql-server-dev-$major" >/dev/null 2>&1; then
  $SUDO apt-get update -qq >/dev/null
  apt-get download -qq "postgresql-server-dev-$major" >/dev/null 2>&1
fi
dpkg-deb -x postgresql-server-dev-"$major"_*.deb dev
if ! command -v cc >/dev/null || ! command -v make >/dev/null; then
  step="apt-get install gcc make libc6-dev"
  apt_install gcc make libc6-dev || { $SUDO apt-get update -qq >/dev/null && apt_install gcc make libc6-dev; }
fi

# with_llvm=no: no JIT bitcode (that needs clang); OPTFLAGS="": no -march=native, so the
# library also runs on another CPU than the one that built it.
build=(with_llvm=no OPTFLAGS= PG_CONFIG="$pg_config" includedir_server="$work/dev/usr/include/postgresql/$major/server")
log=${TMPDIR:-/tmp}/ferry-pgvector-build.log
step="building pgvector $VERSION, see $log"
make -s -C "pgvector-$VERSION" "${build[@]}" -j"$(nproc)" >"$log" 2>&1
step="installing pgvector into $("$pg_config" --pkglibdir)"
$SUDO make -s -C "pgvector-$VERSION" "${build[@]}" install >/dev/null
