#!/bin/sh
# Create the PESQ venv the transcoding tests score with (target/pesq-venv), unless it already
# works. `pesq` 0.0.4 is a source tarball whose setup.py needs numpy and Cython installed first.
set -eu
cd "$(dirname "$0")/../.."
venv=target/pesq-venv
if "$venv/bin/python3" -c 'import pesq' 2>/dev/null; then
    exit 0
fi
rm -rf "$venv"
mkdir -p target
python3 -m venv "$venv"
"$venv/bin/pip" install --quiet numpy==2.4.6 cython==3.2.4 wheel==0.45.1
"$venv/bin/pip" install --quiet --no-build-isolation pesq==0.0.4
"$venv/bin/python3" -c 'import pesq'
