#!/usr/bin/env bash
# CI: run the integration examples of docs/integration/examples/ against a real yihao.
#
#   .ci/examples/run.sh YIHAO_BINARY
#
# Sets up what the examples need (idempotent: Flask + Authlib into .ci/venv, openid-client into
# .ci/examples/node, Apache mod_auth_openidc from Debian when missing), starts `yihao serve` on SQLite
# in a temporary directory, seeds the sandbox's test people, registers one client per example, starts
# the Flask, Node and Apache examples, each on its own loopback address (so each is a pairwise-subject
# sector of its own), and drives them with .ci/examples/browser.py as the person's browser. One PASS or
# FAIL line per check; exits non-zero on any failure; stops everything it started.
set -euo pipefail
cd "$(dirname "$0")/../.."
REPO=$PWD
YIHAO=$(realpath "${1:?usage: .ci/examples/run.sh YIHAO_BINARY}")
EXAMPLES=$REPO/docs/integration/examples
NODE_DIR=$REPO/.ci/examples/node
VENV=$REPO/.ci/venv
started=$(date +%s)

step() { printf '== %s\n' "$*"; }

# --- what the examples need -------------------------------------------------------------------
if [ ! -x "$VENV/bin/python" ]; then
  step "creating $VENV"
  python3 -m venv "$VENV"
fi
requirements=$EXAMPLES/python-flask-authlib/requirements.txt
if ! cmp -s "$requirements" "$VENV/.examples-requirements.txt"; then
  step "installing the Flask example's requirements into $VENV"
  "$VENV/bin/pip" install --quiet --disable-pip-version-check -r "$requirements"
  cp "$requirements" "$VENV/.examples-requirements.txt"
fi

# The Node example runs from a copy beside its node_modules (ES modules resolve packages from the
# file's own directory).
mkdir -p "$NODE_DIR"
if [ ! -d "$NODE_DIR/node_modules" ] ||
  ! cmp -s "$EXAMPLES/node-openid-client/package-lock.json" "$NODE_DIR/package-lock.json"; then
  step "installing the Node example's packages into $NODE_DIR"
  cp "$EXAMPLES/node-openid-client/package.json" "$EXAMPLES/node-openid-client/package-lock.json" "$NODE_DIR/"
  npm ci --silent --no-audit --no-fund --prefix "$NODE_DIR"
fi
cp "$EXAMPLES/node-openid-client/app.mjs" "$NODE_DIR/app.mjs"

MODULES=/usr/lib/apache2/modules
if [ ! -x /usr/sbin/apache2 ] || [ ! -f $MODULES/mod_auth_openidc.so ]; then
  step "installing apache2 and libapache2-mod-auth-openidc"
  export DEBIAN_FRONTEND=noninteractive
  apt-get install -y -qq apache2 libapache2-mod-auth-openidc >/dev/null 2>&1 ||
    { apt-get update -qq && apt-get install -y -qq apache2 libapache2-mod-auth-openidc >/dev/null; }
fi

# --- a yihao of its own -----------------------------------------------------------------------
TMP=$(mktemp -d)
chmod 755 "$TMP" # Apache's workers run as nobody when started by root
PIDS=()
status=1
cleanup() {
  for pid in "${PIDS[@]}"; do kill "$pid" 2>/dev/null || true; done
  for pid in "${PIDS[@]}"; do wait "$pid" 2>/dev/null || true; done
  if [ "$status" -ne 0 ]; then
    for log in "$TMP"/*.log "$TMP"/apache/error.log; do
      [ -f "$log" ] || continue
      printf -- '--- last lines of %s\n' "${log#"$TMP"/}"
      tail -n 25 "$log"
    done
  fi
  if [ "${KEEP_TMP:-0}" = 1 ]; then echo "kept $TMP"; else rm -rf "$TMP"; fi
}
trap cleanup EXIT

# Only this script's configuration reaches yihao (a YIHAO_* variable of the caller would change it).
for var in $(compgen -e | grep '^YIHAO_' || true); do unset "$var"; done

free_port() { # a free TCP port on address $1
  python3 -c 'import socket,sys; s=socket.socket(); s.bind((sys.argv[1],0)); print(s.getsockname()[1])' "$1"
}
wait_http() { # URL SECONDS: until it answers
  local deadline=$(($(date +%s) + $2))
  until curl -s -o /dev/null "$1"; do
    if [ "$(date +%s)" -gt "$deadline" ]; then echo "FAIL $1 did not answer within $2 s"; return 1; fi
    sleep 0.2
  done
}

YIHAO_PORT=$(free_port 127.0.0.1)
ISSUER=http://127.0.0.1:$YIHAO_PORT
export YIHAO_SERVER__BIND=127.0.0.1:$YIHAO_PORT
export YIHAO_SERVER__ISSUER=$ISSUER
export YIHAO_DATABASE__URL=sqlite://$TMP/yihao.db
export YIHAO_KEYS__DEV_DIR=$TMP/keys
export YIHAO_SMS__DEV_OUTBOX=$TMP/sms-outbox.jsonl
export YIHAO_LOG__FORMAT=json

step "yihao serve at $ISSUER"
"$YIHAO" serve >"$TMP/yihao.log" 2>&1 &
PIDS+=($!)
for _ in $(seq 1 150); do
  curl -sf "$ISSUER/readyz" >/dev/null && break
  sleep 0.2
done
curl -sf "$ISSUER/readyz" >/dev/null || { echo "FAIL yihao is not ready"; exit 1; }
echo "PASS yihao is ready"

# The sandbox's people (docs/integration/sandbox.md), written into the same database.
"$YIHAO" sandbox seed --people 2 --output json >"$TMP/seed.json"
json() { python3 -c 'import json,sys; d=json.load(open(sys.argv[1])); print(eval(sys.argv[2], {"d": d}))' "$@"; }
IDENTIFIER=$(json "$TMP/seed.json" 'd["people"][0]["id_number"]')
PASSWORD=$(json "$TMP/seed.json" 'd["password"]')
NAME=$(json "$TMP/seed.json" 'd["people"][0]["name"]')
LEVEL=$(json "$TMP/seed.json" 'd["people"][0]["level"]')
echo "PASS sandbox seeded"

FLASK=http://127.0.0.2:$(free_port 127.0.0.2)
NODE=http://127.0.0.3:$(free_port 127.0.0.3)
APACHE_PORT=$(free_port 127.0.0.4)
APACHE=http://127.0.0.4:$APACHE_PORT

register() { # NAME ID BASE CALLBACK_PATH BACKCHANNEL_PATH: prints the client secret
  "$YIHAO" client create --name "$1" --id "$2" \
    --redirect-uri "$3$4" --post-logout-redirect-uri "$3/" --backchannel-logout-uri "$3$5" \
    --grant-type authorization_code --scope openid --scope profile \
    --token-endpoint-auth-method client_secret_basic --output json >"$TMP/client-$2.json"
  json "$TMP/client-$2.json" 'd["client_secret"]'
}
FLASK_SECRET=$(register "Flask example" example-flask "$FLASK" /callback /backchannel-logout)
NODE_SECRET=$(register "Node example" example-node "$NODE" /callback /backchannel-logout)
APACHE_SECRET=$(register "Apache example" example-apache "$APACHE" /protected/redirect_uri \
  "/protected/redirect_uri?logout=backchannel")
# The running server reloads its client registry every cache.clients_reload_ms (1 s) when it has no
# Redis: wait until it knows the last client (a request without PKCE is then sent back to the client
# with an error, where an unknown client gets yihao's error page).
for _ in $(seq 1 50); do
  where=$(curl -s -o /dev/null -w '%{redirect_url}' "$ISSUER/authorize?response_type=code&client_id=example-apache&scope=openid&state=probe&redirect_uri=$(
    python3 -c 'import sys, urllib.parse; print(urllib.parse.quote(sys.argv[1], safe=""))' "$APACHE/protected/redirect_uri")")
  case "$where" in "$APACHE/protected/redirect_uri?"*) break ;; esac
  sleep 0.1
done
echo "PASS three clients registered"

# --- the examples -------------------------------------------------------------------------------
step "Flask example at $FLASK"
env YIHAO_ISSUER="$ISSUER" CLIENT_ID=example-flask CLIENT_SECRET="$FLASK_SECRET" APP_BASE_URL="$FLASK" \
  "$VENV/bin/python" "$EXAMPLES/python-flask-authlib/app.py" >"$TMP/flask.log" 2>&1 &
PIDS+=($!)

step "Node example at $NODE"
env YIHAO_ISSUER="$ISSUER" CLIENT_ID=example-node CLIENT_SECRET="$NODE_SECRET" APP_BASE_URL="$NODE" \
  node "$NODE_DIR/app.mjs" >"$TMP/node.log" 2>&1 &
PIDS+=($!)

step "Apache mod_auth_openidc example at $APACHE"
mkdir -p "$TMP/apache/run"
cp -r "$EXAMPLES/apache-mod-auth-openidc/htdocs" "$TMP/apache/htdocs"
chmod -R a+rX "$TMP/apache"
{
  echo "ServerRoot $TMP/apache"
  echo "ServerName 127.0.0.4"
  echo "Listen 127.0.0.4:$APACHE_PORT"
  echo "PidFile $TMP/apache/run/httpd.pid"
  echo "DefaultRuntimeDir $TMP/apache/run"
  echo "ErrorLog $TMP/apache/error.log"
  echo "LogLevel warn auth_openidc:info"
  for module in mpm_event authn_core authz_core authz_user mime dir include auth_openidc; do
    echo "LoadModule ${module}_module $MODULES/mod_$module.so"
  done
  if [ "$(id -u)" = 0 ]; then echo "User nobody"; echo "Group nogroup"; fi
  cat <<EOF
StartServers 1
MinSpareThreads 1
MaxSpareThreads 25
ServerLimit 1
ThreadsPerChild 25
MaxRequestWorkers 25
TypesConfig /etc/mime.types
AddDefaultCharset utf-8
DocumentRoot $TMP/apache/htdocs
DirectoryIndex index.shtml index.html
<Directory $TMP/apache/htdocs>
    Options +Includes
    AddType text/html .shtml
    AddOutputFilter INCLUDES .shtml
    Require all granted
</Directory>
Include $EXAMPLES/apache-mod-auth-openidc/yihao-oidc.conf
EOF
} >"$TMP/apache/httpd.conf"
env YIHAO_ISSUER="$ISSUER" OIDC_CLIENT_ID=example-apache OIDC_CLIENT_SECRET="$APACHE_SECRET" \
  APP_BASE_URL="$APACHE" OIDC_CRYPTO_PASSPHRASE="$(head -c 24 /dev/urandom | base64)" \
  /usr/sbin/apache2 -f "$TMP/apache/httpd.conf" -DFOREGROUND >"$TMP/apache.log" 2>&1 &
PIDS+=($!)

wait_http "$FLASK/" 20
wait_http "$NODE/" 20
wait_http "$APACHE/" 20
echo "PASS the three examples answer"

# --- the person's browser -------------------------------------------------------------------------
ISSUER=$ISSUER IDENTIFIER=$IDENTIFIER PASSWORD=$PASSWORD NAME=$NAME LEVEL=$LEVEL FLASK=$FLASK \
  FLASK_SECRET=$FLASK_SECRET NODE=$NODE APACHE=$APACHE python3 - "$TMP/browser.json" <<'EOF'
import json, os, sys
from urllib.parse import quote
e = os.environ
web = dict(login="/login", logout="/logout", home="/", backchannel="/backchannel-logout",
           sub_row="sub", acr_row="acr", name_row="name")
json.dump({
    "issuer": e["ISSUER"],
    # A password alone reaches level 2 at most (docs/assurance.md).
    "person": {"identifier": e["IDENTIFIER"], "password": e["PASSWORD"], "name": e["NAME"],
               "acr": "urn:yihao:loa:%d" % min(int(e["LEVEL"]), 2)},
    "apps": {
        "flask": dict(base=e["FLASK"], client_id="example-flask", client_secret=e["FLASK_SECRET"], **web),
        "node": dict(base=e["NODE"], **web),
        "apache": dict(base=e["APACHE"], login="/protected/", home="/protected/", protected=True,
                       logout="/protected/redirect_uri?logout=" + quote(e["APACHE"] + "/", safe=""),
                       sub_row="REMOTE_USER", acr_row="acr", name_row="name"),
    },
}, open(sys.argv[1], "w"), ensure_ascii=False)
EOF
set +e
timeout 120 "$VENV/bin/python" "$REPO/.ci/examples/browser.py" "$TMP/browser.json"
status=$?
set -e
echo "run.sh: $(($(date +%s) - started)) s"
exit $status
