#!/usr/bin/env bash
# Make .venv point at a virtualenv with exactly requirements.txt installed.
#
# One venv per hash of requirements.txt, under ${INKWELL_VENV_ROOT:-~/.cache/inkwell}, so it is
# built once and reused by ./run, ./test and CI caches. It is built in a temporary folder and
# renamed into place only when complete: an interrupted build is never reused.
set -euo pipefail

repo_root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
requirements="$repo_root/requirements.txt"
venv_root="${INKWELL_VENV_ROOT:-$HOME/.cache/inkwell}"

find_python() {
    local candidate
    for candidate in ${INKWELL_PYTHON:-} python3 python3.13 python3.12 python3.11; do
        if command -v "$candidate" >/dev/null 2>&1 &&
            "$candidate" -c 'import sys; sys.exit(sys.version_info < (3, 11))' 2>/dev/null; then
            echo "$candidate"
            return 0
        fi
    done
    echo "Inkwell needs Python 3.11 or newer, and none was found (tried ${INKWELL_PYTHON:-} python3," \
        "python3.13, python3.12, python3.11; found: $(python3 --version 2>&1 || echo none))." >&2
    echo "Install it (e.g. apt-get install python3, or pyenv), or set INKWELL_PYTHON to its path." >&2
    return 1
}

python="$(find_python)"
hash="$("$python" -c 'import hashlib, sys; print(hashlib.sha256(open(sys.argv[1], "rb").read()).hexdigest()[:16])' "$requirements")"
venv="$venv_root/venv-$hash"

remove_dead_partial_builds() {
    # A partial build is named after the pid that builds it; one whose builder is gone is garbage.
    local partial pid
    for partial in "$venv.partial-"*; do
        [ -e "$partial" ] || continue
        pid="${partial##*.partial-}"
        kill -0 "$pid" 2>/dev/null || rm -rf "$partial"
    done
}

build_venv() {
    local partial="$venv.partial-$$"
    echo "Building the Python environment for requirements.txt ($hash) in $venv — the first time takes a few minutes…" >&2
    mkdir -p "$venv_root"
    remove_dead_partial_builds
    trap 'rm -rf "$partial"' EXIT
    "$python" -m venv --prompt inkwell "$partial"
    "$partial/bin/python" -m pip install --quiet --disable-pip-version-check --no-input --upgrade pip
    "$partial/bin/python" -m pip install --quiet --disable-pip-version-check --no-input -r "$requirements"
    # pip wrote the partial path into scripts (shebangs, activate): point them at the final path.
    "$partial/bin/python" - "$partial" "$venv" <<'EOF'
import pathlib, sys
old, new = sys.argv[1:]
for path in [*pathlib.Path(old, "bin").iterdir(), pathlib.Path(old, "pyvenv.cfg")]:
    if path.is_symlink() or not path.is_file():
        continue
    try:
        text = path.read_text()
    except UnicodeDecodeError:
        continue
    if old in text:
        path.write_text(text.replace(old, new))
EOF
    # rename(2): atomic, and it fails if another build finished first, whose venv we then use.
    if ! "$python" -c 'import os, sys; os.rename(sys.argv[1], sys.argv[2])' "$partial" "$venv" 2>/dev/null; then
        [ -x "$venv/bin/python" ] || { echo "Could not move $partial to $venv" >&2; return 1; }
    fi
    trap - EXIT
    rm -rf "$partial"
    echo "Python environment ready." >&2
}

[ -x "$venv/bin/python" ] || build_venv

link="$repo_root/.venv"
if [ -e "$link" ] && [ ! -L "$link" ]; then
    echo "$link is a real folder, not our symlink: move it away (e.g. rm -rf .venv) and try again." >&2
    exit 1
fi
ln -sfn "$venv" "$link"
