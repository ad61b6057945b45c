#!/usr/bin/env bash
# Build muse's Docker image without an image registry: a Debian base made with debootstrap
# (Python from Debian's packages) and imported into Docker, then the Dockerfile on top of it.
#
#   scripts/build-image.sh [--base IMAGE] [--suite SUITE] [--mirror URL] [--tag TAG]
#                          [--device cpu|cuda|none] [--wheels DIR] [--cert FILE] [--dry-run]
#
#   --base     build on this image (one made earlier, or python:3.11-slim where a registry is
#              reachable) instead of making a base with debootstrap (needs root)
#   --suite    the Debian release of the base (default bookworm: Python 3.11); its image is
#              muse-base:SUITE
#   --mirror   the Debian mirror debootstrap downloads from (default http://deb.debian.org/debian)
#   --tag      the image's name (default muse)
#   --device   where torch comes from: cpu (default) or cuda, PyTorch's wheel index for that
#              build; none, pip's indexes (PyPI, or the mirror PIP_INDEX_URL names)
#   --wheels   take wheels from DIR first (a torch wheel where download.pytorch.org is out of
#              reach); implies --device none unless --device is given
#   --cert     the CA bundle pip checks TLS with, for a network that intercepts it (default: the
#              host's PIP_CERT, when set)
#   --dry-run  print the steps instead of running them
#
# The build runs with host networking, which reaches pip's indexes where Docker's own bridge
# network may not, and gets the host's PIP_INDEX_URL and PIP_EXTRA_INDEX_URL where they are set.
# Builds run under `nice`: they take minutes and gigabytes.
set -euo pipefail

base=""
suite="bookworm"
mirror="http://deb.debian.org/debian"
tag="muse"
device=""
wheels=""
cert="${PIP_CERT:-}"
dry_run=0
while [ $# -gt 0 ]; do
    case "$1" in
        --base) base="${2:?--base needs an image}"; shift 2 ;;
        --suite) suite="${2:?--suite needs a Debian release such as bookworm}"; shift 2 ;;
        --mirror) mirror="${2:?--mirror needs a URL}"; shift 2 ;;
        --tag) tag="${2:?--tag needs a name}"; shift 2 ;;
        --device) device="${2:?--device needs cpu, cuda or none}"; shift 2 ;;
        --wheels) wheels="${2:?--wheels needs a folder}"; shift 2 ;;
        --cert) cert="${2:?--cert needs a CA bundle file}"; shift 2 ;;
        --dry-run) dry_run=1; shift ;;
        *) echo "scripts/build-image.sh: unknown option '$1'" >&2; exit 2 ;;
    esac
done

if [ -z "$device" ]; then
    if [ -n "$wheels" ]; then device="none"; else device="cpu"; fi
fi
case "$device" in
    cpu|cuda) device_arg="$device" ;;
    none) device_arg="" ;;
    *) echo "scripts/build-image.sh: --device must be cpu, cuda or none, not '$device'" >&2
       exit 2 ;;
esac
if [ -n "$wheels" ]; then
    if ! compgen -G "$wheels/*.whl" >/dev/null; then
        echo "scripts/build-image.sh: --wheels $wheels holds no .whl file" >&2
        exit 2
    fi
    wheels="$(cd "$wheels" && pwd)"
fi
if [ -n "$cert" ]; then
    if [ ! -f "$cert" ]; then
        echo "scripts/build-image.sh: --cert $cert is not a file" >&2
        exit 2
    fi
    cert="$(cd "$(dirname "$cert")" && pwd)/$(basename "$cert")"
fi

cd "$(dirname "$0")/.."
staging="docker/pip"  # what the Dockerfile gives pip (wheels, CA bundle), in the build context
rootfs=""             # the base's root file system while it is made
staged=()             # the files copied into $staging for this build

cleanup() {
    [ -z "$rootfs" ] || rm -rf "$rootfs"
    [ "${#staged[@]}" = 0 ] || rm -f "${staged[@]}"
}
[ "$dry_run" = 1 ] || trap cleanup EXIT

run() {
    if [ "$dry_run" = 1 ]; then
        echo "$*"
    else
        "$@"
    fi
}

make_base() {
    local image="muse-base:${suite}"
    if [ "$dry_run" = 1 ]; then
        rootfs="/tmp/muse-rootfs.XXXXXX"
    else
        [ "$(id -u)" = 0 ] || { echo "scripts/build-image.sh: debootstrap needs root" >&2; exit 1; }
        rootfs="$(mktemp -d /tmp/muse-rootfs.XXXXXX)"
    fi
    # minbase: dpkg and apt only; python3-venv brings pip for the virtual environment.
    run nice -n 10 debootstrap --variant=minbase --include=python3,python3-venv,ca-certificates \
        "$suite" "$rootfs" "$mirror"
    # The downloaded packages and package lists are not part of an image.
    run find "$rootfs/var/cache/apt/archives" "$rootfs/var/lib/apt/lists" -type f -delete
    if [ "$dry_run" = 1 ]; then
        echo "tar -C $rootfs -c . | docker import --change 'CMD [\"python3\"]' - $image"
    else
        tar -C "$rootfs" -c . | docker import --change 'CMD ["python3"]' - "$image"
    fi
    run rm -rf "$rootfs"
    rootfs=""
    base="$image"
}

stage() {
    run cp "$1" "$staging/$2"
    staged+=("$staging/$2")
}

[ -n "$base" ] || make_base
build=(nice -n 10 docker build --force-rm --network host --build-arg "BASE=${base}"
       --build-arg "DEVICE=${device_arg}")
if [ -n "$wheels" ]; then
    for wheel in "$wheels"/*.whl; do
        stage "$wheel" "$(basename "$wheel")"
    done
fi
for setting in PIP_INDEX_URL PIP_EXTRA_INDEX_URL; do
    [ -z "${!setting:-}" ] || build+=(--build-arg "${setting}=${!setting}")
done
if [ -n "$cert" ]; then
    stage "$cert" ca-bundle.crt
    build+=(--build-arg "PIP_CERT=/tmp/pip/ca-bundle.crt")
fi
run "${build[@]}" -t "$tag" .
if [ "${#staged[@]}" -gt 0 ]; then
    run rm -f "${staged[@]}"
    staged=()
fi
run docker images "$tag"
