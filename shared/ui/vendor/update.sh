#!/usr/bin/env bash
# Vendors the htmx file that quper-ui embeds, from pinned
# npm packages, so that `cargo build` never needs npm or the network.
#
#   bash shared/ui/vendor/update.sh          # fetch, verify, (re)write the files
#   bash shared/ui/vendor/update.sh --check  # fetch, verify, compare with the committed files
#
# Each package tarball is fetched with `npm pack` (scripts ignored) and must
# match the npm integrity hash pinned below before anything is extracted. The
# extracted files' SHA-256 sums go to SHA256SUMS, which the crate's tests check
# against the committed files.
#
# To upgrade: change the version and its integrity (`npm view PKG@VERSION
# dist.integrity`), run this script, rename the version in src/assets.rs
# (HTMX_VERSION), and run the browser tests (tests/browser), which drive every
# page under Quper's CSP.
set -euo pipefail

here="$(cd "$(dirname "$0")" && pwd)"

# package  version  npm integrity  files (path inside the package)
packages=(
  "htmx.org|2.0.8|sha512-fm297iru0iWsNJlBrjvtN7V9zjaxd+69Oqjh4F/Vq9Wwi2kFisLcrLCiv5oBX0KLfOX/zG8AUo9ROMU5XUB44Q==|dist/htmx.min.js LICENSE"
)

check=false
case "${1:-}" in
  --check) check=true ;;
  "") ;;
  *) echo "usage: $0 [--check]" >&2; exit 2 ;;
esac

command -v npm >/dev/null || { echo "update.sh: npm is missing (Debian: apt-get install -y npm)" >&2; exit 1; }
command -v openssl >/dev/null || { echo "update.sh: openssl is missing" >&2; exit 1; }

work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT

sums="$work/SHA256SUMS"
failed=false
for entry in "${packages[@]}"; do
  IFS='|' read -r name version integrity files <<<"$entry"
  dir="$name-$version"
  echo "==> $name@$version"
  (cd "$work" && npm pack --ignore-scripts --silent "$name@$version" >/dev/null)
  tarball="$work/$name-$version.tgz"
  actual="sha512-$(openssl dgst -sha512 -binary "$tarball" | openssl base64 -A)"
  if [ "$actual" != "$integrity" ]; then
    echo "update.sh: $name@$version integrity mismatch: got $actual, pinned $integrity" >&2
    exit 1
  fi
  mkdir -p "$work/x/$dir"
  tar -xzf "$tarball" -C "$work/x/$dir"
  mkdir -p "$work/out/$dir"
  for f in $files; do
    cp "$work/x/$dir/package/$f" "$work/out/$dir/$(basename "$f")"
    (cd "$work/out" && sha256sum "$dir/$(basename "$f")") >>"$sums"
  done
done

if $check; then
  for entry in "${packages[@]}"; do
    IFS='|' read -r name version _ files <<<"$entry"
    dir="$name-$version"
    for f in $files; do
      b="$(basename "$f")"
      if ! cmp -s "$work/out/$dir/$b" "$here/$dir/$b"; then
        echo "update.sh: $dir/$b differs from $name@$version on npm" >&2
        failed=true
      fi
    done
  done
  cmp -s "$sums" "$here/SHA256SUMS" || { echo "update.sh: SHA256SUMS is out of date" >&2; failed=true; }
  $failed && exit 1
  echo "vendored files match the pinned npm packages"
  exit 0
fi

# Replace the vendored folders with the freshly verified files.
find "$here" -mindepth 1 -maxdepth 1 -type d -exec rm -rf {} +
cp -R "$work/out/." "$here/"
cp "$sums" "$here/SHA256SUMS"
echo "wrote $(wc -l <"$sums") files; SHA256SUMS:"
cat "$here/SHA256SUMS"
