#!/bin/sh
# tools/deps.sh [build|test]: install the Debian 12 packages tiercache needs
# that are missing (as root, with apt-get). "build" (the default) is what
# building and running the server needs; "test" adds what the tests need.
set -eu
pkgs="cmake make gcc pkg-config libevent-dev liblmdb-dev libxxhash-dev"
if [ "${1:-build}" = test ]; then
    pkgs="$pkgs check memcached libmemcached-tools nutcracker"
fi
missing=""
for p in $pkgs; do
    if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
        missing="$missing $p"
    fi
done
[ -z "$missing" ] && exit 0
if [ "$(id -u)" != 0 ]; then
    echo "tools/deps.sh: missing packages:$missing (run as root to install them)" >&2
    exit 1
fi
echo "tools/deps.sh: installing$missing" >&2
apt-get update -qq
DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $missing >/dev/null
