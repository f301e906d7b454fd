#!/usr/bin/env bash
# Install the OHIF viewer the web app serves at /viewer: npm package @ohif/app at a pinned
# version, its tarball checked against a pinned sha512 integrity, its prebuilt dist/ extracted
# into worklist/web/viewer_dist/ (ignored by git). The dist is built for the site root; its
# root-absolute paths (index.html, the webpack public path of each bundle) are rewritten to
# /viewer/. Idempotent: does nothing when this version is installed. No build, no other download.
#
#   scripts/install-viewer.sh             install or fail (make test's `viewer` step)
#   scripts/install-viewer.sh --optional  without npm: say how to add the viewer, exit 0 (make run)
#
# To update the pin: see docs/web.md, "The OHIF viewer".
set -euo pipefail
cd "$(dirname "$0")/.."

OHIF_VERSION=3.13.2
OHIF_INTEGRITY="sha512-WZdxmpmG7rqFgW9ZJLcbgr3XCtLi1KDNPoMaeY5PPe6j4G4fjEjjkycZM6C6Zk2F87BKxFfpq+jd5xXZB9E8EA=="
DEST="${TRIAGE_VIEWER_DIR:-worklist/web/viewer_dist}"
PREFIX="/viewer/"
STAMP="$DEST/.installed"
want="@ohif/app@$OHIF_VERSION $OHIF_INTEGRITY"

if [[ -f "$STAMP" && "$(cat "$STAMP")" == "$want" ]]; then
  echo "viewer present: @ohif/app@$OHIF_VERSION in $DEST"
  exit 0
fi
if ! command -v npm >/dev/null 2>&1; then
  echo "npm not found: the web app runs without the viewer at /viewer." >&2
  echo "To add it: install npm (apt-get install npm), then run scripts/install-viewer.sh" >&2
  [[ "${1:-}" == "--optional" ]] && exit 0
  exit 1
fi

work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
echo "fetching @ohif/app@$OHIF_VERSION from the npm registry"
(cd "$work" && npm pack --silent "@ohif/app@$OHIF_VERSION" >/dev/null)
tgz="$work/ohif-app-$OHIF_VERSION.tgz"
got="sha512-$(openssl dgst -sha512 -binary "$tgz" | base64 -w0)"
if [[ "$got" != "$OHIF_INTEGRITY" ]]; then
  echo "integrity mismatch for @ohif/app@$OHIF_VERSION: got $got, pinned $OHIF_INTEGRITY" >&2
  exit 1
fi
tar -xzf "$tgz" -C "$work" package/dist
dist="$work/package/dist"

# index.html: the public URL, and every root-absolute src/href.
grep -q 'window.PUBLIC_URL="/"' "$dist/index.html"
sed -i -e "s#window.PUBLIC_URL=\"/\"#window.PUBLIC_URL=\"$PREFIX\"#g" \
  -e "s#\\(src\\|href\\|content\\)=\"/\\([^/]\\)#\\1=\"$PREFIX\\2#g" "$dist/index.html"
# The stylesheets' fonts and images.
sed -i "s#url(/\\([^/]\\)#url($PREFIX\\1#g" "$dist"/*.css
# Each bundle's webpack runtime loads chunks, workers and wasm from its public path.
mapfile -t bundles < <(grep -l '__webpack_require__.p = "/";' "$dist"/*.js)
[[ ${#bundles[@]} -gt 0 ]] || { echo "no webpack public path found in the dist" >&2; exit 1; }
sed -i "s#__webpack_require__.p = \"/\";#__webpack_require__.p = \"$PREFIX\";#" "${bundles[@]}"
grep -q "__webpack_require__.p = \"$PREFIX\";" "$dist"/app.bundle.*.js

rm -rf "$DEST.new" "$DEST.old"
mv "$dist" "$DEST.new"
echo "$want" >"$DEST.new/.installed"
[[ -e "$DEST" ]] && mv "$DEST" "$DEST.old"
mv "$DEST.new" "$DEST"
rm -rf "$DEST.old"
echo "viewer installed: @ohif/app@$OHIF_VERSION in $DEST"
