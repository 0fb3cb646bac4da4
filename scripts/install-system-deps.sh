#!/usr/bin/env bash
# Installs the system programs Ferry's dev stack and example tools need, only those missing:
# a JDK 17+ and Maven (Kafka and Connect from Maven Central), PostgreSQL's server binaries,
# Tesseract (OCR in the example invoice tools), and Chromium with its chromedriver (the dashboard's
# browser tests), then pgvector for that PostgreSQL (install-pgvector.sh, never fatal).
# Debian/Ubuntu (apt) only.
set -euo pipefail

missing=()
java_major() { java -version 2>&1 | sed -n 's/.*version "\([0-9]*\).*/\1/p' | head -1; }
if ! command -v java >/dev/null || [ "$(java_major)" -lt 17 ]; then missing+=(openjdk-17-jre-headless); fi
command -v mvn >/dev/null || missing+=(maven)
if ! command -v initdb >/dev/null && ! ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1; then
  missing+=(postgresql)
fi
command -v psql >/dev/null || missing+=(postgresql-client)
command -v tesseract >/dev/null || missing+=(tesseract-ocr tesseract-ocr-eng)
command -v chromium >/dev/null || missing+=(chromium)
command -v chromedriver >/dev/null || missing+=(chromium-driver)

install_missing() {
  echo "system packages: installing ${missing[*]}"
  SUDO=""
  if [ "$(id -u)" -ne 0 ]; then
    command -v sudo >/dev/null || { echo "error: need root or sudo to install ${missing[*]} — fix: install them by hand" >&2; exit 1; }
    SUDO=sudo
  fi
  export DEBIAN_FRONTEND=noninteractive
  $SUDO apt-get update -qq
  $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}"
  # Debian's postgresql package starts a cluster of its own; Ferry runs its own servers.
  if printf '%s\n' "${missing[@]}" | grep -qx postgresql; then
    $SUDO service postgresql stop >/dev/null 2>&1 || true
  fi
}

if [ ${#missing[@]} -eq 0 ]; then
  echo "system packages: all present"
else
  install_missing
fi
# Optional: without it Ferry works, ranking knowledge in Python; the script says so itself.
"$(dirname "$0")/install-pgvector.sh" || true
