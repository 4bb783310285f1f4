#!/usr/bin/env bash
# Install the collections pinned in collections/requirements.yml into
# $DQ_CACHE/collections without Galaxy (unreachable here): they are taken out of the
# pinned PyPI bundle wheel (ordinary `pip download`), and each version is checked
# against the pin. Idempotent. Last stdout line: the collections path.
set -euo pipefail
. "$(dirname "$0")/lib.sh"

bundle=ansible==12.3.0
req=$DQ_REPO/collections/requirements.yml
dest=$DQ_CACHE/collections
src=$DQ_CACHE/collections-src
key=$( (echo "$bundle"; cat "$req") | sha256sum | cut -c1-12)
pip=$(readlink -f "$DQ_CACHE/venv")/bin/pip
[ -x "$pip" ] || pip=pip3

if [ -f "$dest/.complete-$key" ]; then echo "$dest"; exit 0; fi
mkdir -p "$src" "$dest"
exec 9>"$src/.lock"; flock 9
wheel=$(ls "$src"/ansible-"${bundle#ansible==}"-py3-none-any.whl 2>/dev/null || true)
if [ -z "$wheel" ]; then
  say "collections: pip download $bundle (the bundle carries the pinned collections)"
  "$pip" download -q --no-deps "$bundle" -d "$src" 2> >(grep -v 'is ignored' >&2)
  wheel=$(ls "$src"/ansible-"${bundle#ansible==}"-py3-none-any.whl)
fi
say "collections: extracting pinned collections into $dest"
python3 - "$wheel" "$req" "$dest" <<'PY'
import json, re, shutil, sys, zipfile
from pathlib import Path
wheel, req, dest = sys.argv[1], Path(sys.argv[2]), Path(sys.argv[3])
pins = re.findall(r'name:\s*([\w.]+)\s*\n\s*version:\s*"([^"]+)"', req.read_text())
if not pins:
    sys.exit(f"dqlab: error: no collection pins in {req}")
z = zipfile.ZipFile(wheel)
for name, version in pins:
    ns, coll = name.split(".")
    prefix = f"ansible_collections/{ns}/{coll}/"
    manifest = json.loads(z.read(prefix + "MANIFEST.json"))
    have = manifest["collection_info"]["version"]
    if have != version:
        sys.exit(f"dqlab: error: collections: {name} pinned {version}, bundle has {have}")
    target = dest / "ansible_collections" / ns / coll
    shutil.rmtree(target, ignore_errors=True)
    for member in z.namelist():
        if member.startswith(prefix) and not member.endswith("/"):
            z.extract(member, dest)
    print(f"{name} {version}", file=sys.stderr)
PY
touch "$dest/.complete-$key"
echo "$dest"
