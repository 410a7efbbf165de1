#!/bin/sh
# pipenv as the image build and flask-appstack's post-generation hook run it; `make lock`
# and `make install` use it. Run it from the repository's root: sh scripts/pipenv.sh lock
#
# Which pip settings reach pipenv (README.md, "Which pip settings reach pipenv"): how to
# reach an index (certificate, proxy, trusted host, timeouts) does; which index to use
# (index-url, extra-index-url, find-links, no-index) does not. pipenv counts pip's index
# settings as sources of a Pipfile without [[source]], so a lock made with them would look
# stale to the image build, which runs without them. The index is the Pipfile's [[source]].
set -eu

settings="$(python3 -m pip config list 2>/dev/null || true)"
setting() {  # the value of pip's global.<key>, or install.<key>, which wins, as in pip
    printf '%s\n' "$settings" | sed -n -e "s/^global\.$1='\(.*\)'\$/\1/p" -e "s/^install\.$1='\(.*\)'\$/\1/p" | tail -n 1
}
for key in cert client-cert proxy trusted-host timeout default-timeout retries; do
    variable="PIP_$(printf '%s' "$key" | tr 'a-z-' 'A-Z_')"
    value="$(setting "$key")"
    if [ -n "$value" ] && [ -z "$(eval "printf '%s' \"\${$variable:-}\"")" ]; then
        export "$variable=$value"
    fi
done
unset PIP_INDEX_URL PIP_EXTRA_INDEX_URL PIP_FIND_LINKS PIP_NO_INDEX PIPENV_PYPI_MIRROR
export PIP_CONFIG_FILE=/dev/null
# pipenv's own HTTP client reads no pip setting: it gets pip's certificate too.
if [ -n "${PIP_CERT:-}" ] && [ -z "${REQUESTS_CA_BUNDLE:-}${CURL_CA_BUNDLE:-}" ]; then
    export REQUESTS_CA_BUNDLE="$PIP_CERT"
fi

# pipenv writes temporary files that hold the index URL with PYPI_USER and PYPI_TOKEN
# expanded: they go into a private directory, removed however pipenv ends.
TMPDIR="$(mktemp -d "${TMPDIR:-/tmp}/pipenv.XXXXXX")"
export TMPDIR
# virtualenv's shared app-data, which any newer virtualenv on the machine updates, could seed
# a setuptools that older pipenv releases cannot run with: its bundled wheels instead.
export VIRTUALENV_OVERRIDE_APP_DATA="$TMPDIR/virtualenv" VIRTUALENV_NO_PERIODIC_UPDATE=1
trap 'rm -rf "$TMPDIR"' EXIT
trap 'exit 130' INT
trap 'exit 143' TERM
export PIPENV_PIPFILE="${PIPENV_PIPFILE:-$(pwd)/source/Pipfile}"
pipenv "$@"
