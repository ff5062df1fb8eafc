#!/usr/bin/env bash
# Build $DIST/kubectl-cyclops.tar.gz (the launcher, which installs the pinned
# release with pip into a private virtualenv on first use) and $DIST/cyclops.yaml,
# the krew manifest for it with its sha256 (DIST: dist by default).
set -euo pipefail
cd "$(dirname "$0")/.."
python=${PYTHON:-.venv/bin/python}
dist=${DIST:-dist}
version=$("$python" -c 'import tomllib; print(tomllib.load(open("pyproject.toml", "rb"))["project"]["version"])')
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
sed "s/@VERSION@/$version/" krew/kubectl-cyclops >"$work/kubectl-cyclops"
chmod 755 "$work/kubectl-cyclops"
cp LICENSE "$work/"
mkdir -p "$dist"
tar -C "$work" --owner=0 --group=0 --mtime='2026-01-01' -czf "$dist/kubectl-cyclops.tar.gz" kubectl-cyclops LICENSE
sha=$(sha256sum "$dist/kubectl-cyclops.tar.gz" | cut -d' ' -f1)
VERSION=$version SHA256=$sha "$python" -c 'import os, string, sys; sys.stdout.write(string.Template(open("krew/cyclops.yaml").read()).substitute(os.environ))' >"$dist/cyclops.yaml"
echo "$dist/kubectl-cyclops.tar.gz ($sha) and $dist/cyclops.yaml for v$version" >&2
