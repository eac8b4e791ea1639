#!/usr/bin/env bash
# The main job without the internet: serve Mattermost-shaped artifacts on 127.0.0.1, gather them
# into a signed bundle, then check and unpack it as the isolated side would.
#   scripts/tryout.sh [WORKDIR]
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
work=${1:-$(mktemp -d /tmp/mmgap-tryout.XXXXXX)}
mkdir -p "$work"
cd "$root"
go build -o "$work/mmgap" ./cmd/mmgap
go build -o "$work/upstream" ./internal/upstreamtest/tryout
"$work/upstream" -dir "$work" & upstream=$!
trap 'kill $upstream 2>/dev/null || true' EXIT
for _ in $(seq 100); do [ -f "$work/ready" ] && break; sleep 0.1; done
[ -f "$work/ready" ] || { echo "tryout: upstream did not start" >&2; exit 1; }

cd "$work"
set -x
./mmgap key generate --name "Try-out Ops" --email ops@example.invalid -o signing --force
./mmgap gather -f mmgap.yaml -o tryout.mmgap.tar.zst --sign-key signing.key
./mmgap bundle inspect tryout.mmgap.tar.zst --trust signing.pub
./mmgap bundle verify tryout.mmgap.tar.zst --trust signing.pub
rm -rf incoming
./mmgap bundle extract tryout.mmgap.tar.zst --trust signing.pub -o incoming
{ set +x; } 2>/dev/null
echo
echo "try-out done in $work: the bundle is tryout.mmgap.tar.zst, its content store is incoming/store"
