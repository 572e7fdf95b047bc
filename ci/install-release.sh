#!/usr/bin/env bash
# Installs a released picklegate binary, verified, without a Rust toolchain:
#
#   install-release.sh TAG ROOT
#
# Downloads `picklegate-TAG-TARGET.tar.gz` (`.zip` on Windows) and the release's `SHA256SUMS`
# from $PICKLEGATE_DOWNLOAD_BASE/TAG/, checks the archive's SHA-256 against its line in
# SHA256SUMS *before* unpacking anything, and installs ROOT/bin/picklegate (plus the archive's
# ci/ scripts under ROOT/ci). The release workflow (.github/workflows/release.yml) writes
# exactly these names.
#
# Environment:
#   PICKLEGATE_DOWNLOAD_BASE  base URL of the releases (default:
#                             https://github.com/$PICKLEGATE_REPOSITORY/releases/download);
#                             a mirror, or a loopback server in the tests
#   PICKLEGATE_REPOSITORY     owner/name on GitHub, for the default base
#   PICKLEGATE_TARGET         target triple, instead of detecting it from `uname`
#
# Exit codes: 0 installed; 2 anything else (unsupported platform, download failed, archive
# not listed in SHA256SUMS, checksum mismatch, archive without the binary). Nothing is left in
# ROOT unless the checksum matched.
set -euo pipefail

die() {
  echo "::error title=picklegate install::$*"
  echo "picklegate: $*" >&2
  exit 2
}

[ $# -eq 2 ] || die "usage: install-release.sh TAG ROOT"
tag="$1"
root="$2"
case "$tag" in
  v[0-9]*) ;;
  *) die "'$tag' is not a release tag (v<version>)" ;;
esac

# The target triple of this machine, as the release matrix names it.
target="${PICKLEGATE_TARGET:-}"
if [ -z "$target" ]; then
  os="$(uname -s)"
  arch="$(uname -m)"
  case "$os/$arch" in
    Linux/x86_64 | Linux/amd64) target=x86_64-unknown-linux-musl ;;
    Linux/aarch64 | Linux/arm64) target=aarch64-unknown-linux-musl ;;
    Darwin/arm64 | Darwin/aarch64) target=aarch64-apple-darwin ;;
    Darwin/x86_64) target=x86_64-apple-darwin ;;
    MINGW*/x86_64 | MSYS*/x86_64 | CYGWIN*/x86_64) target=x86_64-pc-windows-msvc ;;
    *) die "no release binary for $os/$arch; use the source install (install: source) instead" ;;
  esac
fi
case "$target" in
  *-windows-*) ext=zip; exe=picklegate.exe ;;
  *) ext=tar.gz; exe=picklegate ;;
esac
name="picklegate-$tag-$target"
asset="$name.$ext"

base="${PICKLEGATE_DOWNLOAD_BASE:-}"
https_only=""
if [ -z "$base" ]; then
  [ -n "${PICKLEGATE_REPOSITORY:-}" ] || die "PICKLEGATE_REPOSITORY (owner/name) or PICKLEGATE_DOWNLOAD_BASE must be set"
  base="https://github.com/$PICKLEGATE_REPOSITORY/releases/download"
  https_only=1
fi
base="${base%/}"

tmp="$(mktemp -d)"
trap 'rm -rf -- "$tmp"' EXIT

fetch() { # URL FILE
  if command -v curl >/dev/null 2>&1; then
    local proto=()
    [ -n "$https_only" ] && proto=(--proto '=https' --tlsv1.2)
    curl -fsSL --retry 3 --connect-timeout 20 ${proto[@]+"${proto[@]}"} -o "$2" "$1"
  elif command -v wget >/dev/null 2>&1; then
    wget -q -O "$2" "$1"
  else
    python3 -c 'import shutil, sys, urllib.request as u; shutil.copyfileobj(u.urlopen(sys.argv[1], timeout=60), open(sys.argv[2], "wb"))' "$1" "$2"
  fi
}

sha256() { # FILE -> hex digest
  if command -v sha256sum >/dev/null 2>&1; then
    sha256sum -- "$1" | cut -d' ' -f1
  elif command -v shasum >/dev/null 2>&1; then
    shasum -a 256 -- "$1" | cut -d' ' -f1
  else
    python3 -c 'import hashlib, sys; print(hashlib.sha256(open(sys.argv[1], "rb").read()).hexdigest())' "$1"
  fi
}

url="$base/$tag"
fetch "$url/SHA256SUMS" "$tmp/SHA256SUMS" || die "could not download $url/SHA256SUMS"
fetch "$url/$asset" "$tmp/$asset" || die "could not download $url/$asset"

# `sha256sum` lines: 64 hex digits, a space, then ' ' (text) or '*' (binary), then the name.
# Exactly one line must name the archive; the name is compared as a whole string.
expected="$(awk -v want="$asset" '
  length($1) == 64 && $1 ~ /^[0-9a-fA-F]+$/ {
    n = substr($0, 67)
    m = substr($0, 66, 1)
    if (substr($0, 65, 1) == " " && (m == " " || m == "*") && n == want) { print tolower($1); c++ }
  }
  END { if (c != 1) exit 1 }' "$tmp/SHA256SUMS")" \
  || die "$asset is not listed exactly once in $url/SHA256SUMS"
actual="$(sha256 "$tmp/$asset")"
[ "$actual" = "$expected" ] \
  || die "checksum mismatch for $asset: SHA256SUMS says $expected, the download is $actual (refusing to install)"

mkdir "$tmp/x"
case "$ext" in
  tar.gz) tar -xzf "$tmp/$asset" -C "$tmp/x" ;;
  zip)
    if command -v unzip >/dev/null 2>&1; then
      unzip -q "$tmp/$asset" -d "$tmp/x"
    else
      python3 -c 'import sys, zipfile; zipfile.ZipFile(sys.argv[1]).extractall(sys.argv[2])' "$tmp/$asset" "$tmp/x"
    fi
    ;;
esac
[ -f "$tmp/x/$name/$exe" ] || die "$asset has no $name/$exe"

# Into place: a temporary name in the same directory, then a rename, so an interrupted
# install never leaves half a binary where a cached one was.
mkdir -p "$root/bin"
cp "$tmp/x/$name/$exe" "$root/bin/.$exe.new"
chmod 755 "$root/bin/.$exe.new"
mv -f "$root/bin/.$exe.new" "$root/bin/$exe"
if [ -d "$tmp/x/$name/ci" ]; then
  rm -rf -- "$root/ci"
  cp -R "$tmp/x/$name/ci" "$root/ci"
fi
printf '%s %s %s\n' "$tag" "$target" "$actual" > "$root/release"
echo "picklegate $tag ($target) installed in $root/bin, sha256 $actual"
