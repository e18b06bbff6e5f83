#!/usr/bin/env bash
# Re-vendor htmx from the npm registry (pinned to 2.x; npm's `latest` is htmx 4).
set -euo pipefail
version=2.0.11
dest=$(dirname "$0")/../warmysender/static/vendor
tmp=$(mktemp -d)
(cd "$tmp" && npm pack "htmx.org@$version" >/dev/null && tar xzf "htmx.org-$version.tgz")
cp "$tmp/package/dist/htmx.min.js" "$dest/htmx-$version.min.js"
rm -rf "$tmp"
echo "vendored htmx $version"
