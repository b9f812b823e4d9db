#!/bin/sh
# vm-tests/image.sh: find or fetch the official FreeBSD 15 amd64 BASIC-CI
# image (a raw disk with sshd, root login with an empty password and the
# serial console enabled), verified against the published CHECKSUM.SHA256.
#
#   sh vm-tests/image.sh cached    print the cached image's path (no network);
#                                  prints nothing and exits 1 when none
#   sh vm-tests/image.sh resolve   print "VERSION FILE SHA256 URL" of the image
#                                  the download would fetch (small download)
#   sh vm-tests/image.sh fetch     download (when not cached), verify, unpack;
#                                  print the image's path
#   sh vm-tests/image.sh key       print a cache key: VERSION-SHA256
#
# Environment:
#   FREEBSD_VM_BRANCH   15.0-RELEASE (default), 15-STABLE, or an exact
#                       release such as 15.1-RELEASE
#   FREEBSD_VM_VERSION  the exact snapshot version directory (e.g.
#                       15.1-STABLE); default: the newest 15.x-STABLE
#   FREEBSD_VM_CACHE    cache directory (default ${XDG_CACHE_HOME:-$HOME/.cache}/ngsock/vm)
#   FREEBSD_MIRROR      default https://download.freebsd.org
#
# Layout on the mirror (release/tools and the snapshot scripts of the
# FreeBSD release engineers; since 15.0 each image comes as -ufs and -zfs,
# and the UFS one is used):
#   releases/CI-IMAGES/15.0-RELEASE/amd64/Latest/FreeBSD-15.0-RELEASE-amd64-BASIC-CI-ufs.raw.xz
#   releases/CI-IMAGES/15.0-RELEASE/amd64/Latest/CHECKSUM.SHA256
#   snapshots/CI-IMAGES/15.0-STABLE/amd64/Latest/CHECKSUM.SHA256 -> ../DATE/CHECKSUM.SHA256-DATE-HASH-NUM
#   snapshots/CI-IMAGES/15.0-STABLE/amd64/DATE/FreeBSD-15.0-STABLE-amd64-BASIC-CI-ufs-DATE-HASH-NUM.raw.xz
# (older layouts, without -ufs/-zfs, are still understood).
set -u
BRANCH=${FREEBSD_VM_BRANCH:-15.0-RELEASE}
MIRROR=${FREEBSD_MIRROR:-https://download.freebsd.org}
CACHE=${FREEBSD_VM_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/ngsock/vm}

say() { printf 'vm-tests: %s\n' "$*" >&2; }

# fetch URL FILE [MAXTIME]: download with bounded time; 0 on success.
fetch_url() {
    if command -v curl > /dev/null 2>&1; then
        curl -fsSL --connect-timeout 20 --retry 2 --max-time "${3:-60}" -o "$2" "$1"
    elif command -v wget > /dev/null 2>&1; then
        wget -q --connect-timeout=20 --tries=2 --timeout=60 -O "$2" "$1"
    elif command -v fetch > /dev/null 2>&1; then
        fetch -q -T 60 -o "$2" "$1"
    else
        say "no curl, wget or fetch to download with"
        return 1
    fi
}

branch_kind() {
    case $BRANCH in
        15-STABLE|15.*-STABLE|stable/15) echo stable ;;
        15.*-RELEASE) echo release ;;
        *)
            say "FREEBSD_VM_BRANCH=$BRANCH: want 15.0-RELEASE (or another 15.x-RELEASE) or 15-STABLE"
            say "(a -CURRENT kernel is 16.x, with a different netgraph ABI under INVARIANTS: out of scope)"
            exit 2
            ;;
    esac
}

# The version directory: 15.0-RELEASE, or the newest 15.x-STABLE snapshot.
version() {
    if [ -n "${FREEBSD_VM_VERSION:-}" ]; then
        echo "$FREEBSD_VM_VERSION"
        return
    fi
    case $(branch_kind) in
        release) echo "$BRANCH" ;;
        stable)
            case $BRANCH in 15.*-STABLE) echo "$BRANCH"; return ;; esac
            tmp=$(mktemp)
            if fetch_url "$MIRROR/snapshots/CI-IMAGES/" "$tmp" 30; then
                v=$(grep -o '15\.[0-9][0-9]*-STABLE' "$tmp" | sort -t. -k2,2n -u | tail -n 1)
            fi
            rm -f "$tmp"
            echo "${v:-15.0-STABLE}"
            ;;
    esac
}

base_url() { # VERSION
    case $1 in
        *-RELEASE) echo "$MIRROR/releases/CI-IMAGES/$1/amd64" ;;
        *) echo "$MIRROR/snapshots/CI-IMAGES/$1/amd64" ;;
    esac
}

# resolve: VERSION FILE SHA256 URL
resolve() {
    v=$(version)
    base=$(base_url "$v")
    tmp=$(mktemp -d)
    sums=""
    if fetch_url "$base/Latest/CHECKSUM.SHA256" "$tmp/sums" 60; then
        sums=$tmp/sums
    elif fetch_url "$base/Latest/" "$tmp/index" 60; then
        # Older layouts name the file CHECKSUM.SHA256-<something>.
        name=$(grep -o 'CHECKSUM\.SHA256[^"<> ]*' "$tmp/index" | head -n 1)
        if [ -n "$name" ] && fetch_url "$base/Latest/$name" "$tmp/sums" 60; then
            sums=$tmp/sums
        fi
    fi
    if [ -z "$sums" ]; then
        rm -rf "$tmp"
        say "cannot download the checksums of FreeBSD $v from $base/Latest/ (no network?)"
        return 1
    fi
    # BSD "SHA256 (FILE) = HEX" or GNU "HEX  FILE"; the UFS BASIC-CI raw.xz
    # (BASIC-CI-ufs, or a plain BASIC-CI from before the -ufs/-zfs split).
    all=$(sed -n -e 's/^SHA256 (\(FreeBSD-[^)]*BASIC-CI[^)]*\.raw\.xz\)) = \([0-9a-f]\{64\}\)$/\1 \2/p' \
        -e 's/^\([0-9a-f]\{64\}\) [ *]\(FreeBSD-.*BASIC-CI.*\.raw\.xz\)$/\2 \1/p' "$sums" |
        grep -v -i zfs)
    line=$(echo "$all" | grep -e '-BASIC-CI-ufs[-.]' | head -n 1)
    [ -n "$line" ] || line=$(echo "$all" | head -n 1)
    rm -rf "$tmp"
    if [ -z "$line" ]; then
        say "CHECKSUM.SHA256 of FreeBSD $v lists no BASIC-CI raw.xz image"
        return 1
    fi
    file=${line% *}
    sum=${line#* }
    # Snapshot files carry their date and live in ../DATE/; releases in Latest/.
    date=$(echo "$file" | sed -n 's/.*BASIC-CI-\(ufs-\)\{0,1\}\([0-9]\{8\}\)-.*/\2/p')
    if [ -n "$date" ]; then
        url=$base/$date/$file
    else
        url=$base/Latest/$file
    fi
    echo "$v $file $sum $url"
}

cached() {
    case $(branch_kind) in
        release) dirs=$CACHE/${FREEBSD_VM_VERSION:-$BRANCH} ;;
        stable)
            if [ -n "${FREEBSD_VM_VERSION:-}" ]; then
                dirs=$CACHE/$FREEBSD_VM_VERSION
            else
                # The newest snapshot we have.
                dirs=$(for x in "$CACHE"/15.*-STABLE; do [ -d "$x" ] && echo "$x"; done |
                    sort -t. -k2,2n | tail -n 1)
            fi
            ;;
    esac
    for d in $dirs; do
        if [ -f "$d/image.raw" ] && [ -f "$d/image.sha256" ]; then
            echo "$d/image.raw"
            return 0
        fi
    done
    return 1
}

fetch_image() {
    r=$(resolve) || return 1
    # shellcheck disable=SC2086
    set -- $r
    [ $# -eq 4 ] || return 1
    v=$1 file=$2 sum=$3 url=$4
    d=$CACHE/$v
    mkdir -p "$d"
    if [ -f "$d/image.raw" ] && [ "$(cat "$d/image.sha256" 2>/dev/null)" = "$sum" ]; then
        say "FreeBSD $v image cached: $d/image.raw"
        echo "$d/image.raw"
        return 0
    fi
    if [ ! -f "$d/$file" ] || [ "$(sha256sum < "$d/$file" | cut -d' ' -f1)" != "$sum" ]; then
        say "downloading $url"
        rm -f "$d/$file.part"
        fetch_url "$url" "$d/$file.part" 3600 || { say "download failed: $url"; return 1; }
        mv "$d/$file.part" "$d/$file"
    fi
    got=$(sha256sum < "$d/$file" | cut -d' ' -f1)
    if [ "$got" != "$sum" ]; then
        say "checksum mismatch for $file: got $got, published $sum"
        rm -f "$d/$file"
        return 1
    fi
    say "verified $file (sha256 $sum); unpacking"
    rm -f "$d/image.raw" "$d/image.raw.tmp"
    # xz writes sparse output into a regular file.
    xz -dc "$d/$file" > "$d/image.raw.tmp" || { say "cannot unpack $file"; return 1; }
    mv "$d/image.raw.tmp" "$d/image.raw"
    echo "$sum" > "$d/image.sha256"
    echo "$file" > "$d/image.name"
    # Keep only this version's compressed image.
    for old in "$d"/FreeBSD-*.raw.xz; do
        [ "$old" = "$d/$file" ] || rm -f "$old"
    done
    echo "$d/image.raw"
}

# A bad branch stops everything here (branch_kind exits only its subshell
# when called as $(branch_kind)).
branch_kind > /dev/null || exit 2

case ${1:-} in
    cached) cached ;;
    resolve) resolve ;;
    fetch) fetch_image ;;
    key)
        r=$(resolve) || exit 1
        # shellcheck disable=SC2086
        set -- $r
        echo "$1-$3"
        ;;
    *)
        echo "usage: sh vm-tests/image.sh cached|resolve|fetch|key" >&2
        exit 64
        ;;
esac
