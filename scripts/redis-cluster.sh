#!/usr/bin/env bash
# Starts a local Redis Cluster for the dedupe tests: three masters, no
# replicas, on 127.0.0.1:7000, 7001 and 7002, with no persistence. Each node
# keeps its cluster config and log in its own directory under
# ${SLATE_REDIS_CLUSTER_DIR:-/tmp/slate-redis-cluster}.
#
# Safe to run again: a cluster that is up and ok is left alone, nodes that
# are down are started, and nodes that run but hold no slots are joined.
# Then point the tests at it:
#
#	SLATE_REDIS_CLUSTER_ADDRS=127.0.0.1:7000,127.0.0.1:7001,127.0.0.1:7002 go test ./dedupe/
#
# To throw the cluster away: redis-cli -p <port> shutdown nosave for each
# port, then remove the directory.
set -euo pipefail

dir=${SLATE_REDIS_CLUSTER_DIR:-/tmp/slate-redis-cluster}
host=127.0.0.1
ports=(7000 7001 7002)

say() { echo "redis-cluster: $*"; }
# cli PORT ARGS... runs redis-cli against the node on PORT; it prints nothing
# (and succeeds) when the node is down.
cli() { local port=$1; shift; { redis-cli -h "$host" -p "$port" "$@" 2>/dev/null || true; } | tr -d '\r'; }
running() { [ "$(cli "$1" ping)" = PONG ]; }
# field PORT SECTION NAME prints NAME's value from INFO SECTION (or CLUSTER
# INFO when SECTION is "cluster-info") of the node on PORT.
field() {
  if [ "$2" = cluster-info ]; then cli "$1" cluster info; else cli "$1" info "$2"; fi |
    sed -n "s/^$3://p"
}
state_ok() { [ "$(field "$1" cluster-info cluster_state)" = ok ]; }
all_ok() {
  local p
  for p in "${ports[@]}"; do running "$p" && state_ok "$p" || return 1; done
}

for tool in redis-server redis-cli; do
  command -v "$tool" >/dev/null 2>&1 || { say "$tool not found (Debian/Ubuntu: apt-get install redis-server)"; exit 1; }
done

nodes=()
for p in "${ports[@]}"; do nodes+=("$host:$p"); done
addrs=$(IFS=,; echo "${nodes[*]}")

if all_ok; then
  say "already up and ok on $addrs; nothing to do"
  exit 0
fi

for p in "${ports[@]}"; do
  if running "$p"; then
    if [ "$(field "$p" cluster cluster_enabled)" != 1 ]; then
      say "$host:$p runs a Redis that is not in cluster mode; stop it or free port $p"
      exit 1
    fi
    say "node $host:$p already running"
    continue
  fi
  mkdir -p "$dir/$p"
  say "starting node $host:$p (config and log in $dir/$p)"
  redis-server --bind "$host" --port "$p" --daemonize yes \
    --cluster-enabled yes --cluster-config-file "$dir/$p/nodes.conf" \
    --cluster-node-timeout 5000 --dir "$dir/$p" \
    --logfile "$dir/$p/redis.log" --pidfile "$dir/$p/redis.pid" \
    --save "" --appendonly no
done

for p in "${ports[@]}"; do
  for _ in $(seq 50); do running "$p" && break; sleep 0.1; done
  running "$p" || { say "node $host:$p did not start; see $dir/$p/redis.log"; exit 1; }
done

# Nodes that hold no slots have not been joined yet (or were reset): join
# them. Nodes that hold slots were joined before and find each other again
# through their nodes.conf.
assigned=0
for p in "${ports[@]}"; do
  n=$(field "$p" cluster-info cluster_slots_assigned)
  [ "${n:-0}" -gt 0 ] && assigned=1
done
if [ "$assigned" = 0 ]; then
  for p in "${ports[@]}"; do
    # redis-cli --cluster create wants nodes that know no other node.
    if [ "$(field "$p" cluster-info cluster_known_nodes)" != 1 ]; then
      say "resetting node $host:$p, which knows other nodes but holds no slots"
      cli "$p" cluster reset hard >/dev/null
    fi
  done
  say "joining ${ports[*]} into a cluster of 3 masters"
  redis-cli --cluster create "${nodes[@]}" --cluster-replicas 0 --cluster-yes
else
  say "nodes already hold slots; waiting for them to agree"
fi

say "waiting for cluster_state:ok on every node"
for _ in $(seq 300); do
  all_ok && break
  sleep 0.1
done
if ! all_ok; then
  for p in "${ports[@]}"; do
    say "$host:$p: cluster_state:$(field "$p" cluster-info cluster_state), cluster_known_nodes:$(field "$p" cluster-info cluster_known_nodes)"
  done
  say "cluster is not ok after 30s; to start over, run redis-cli -p <port> shutdown nosave for each of ${ports[*]}, remove $dir and run this script again"
  exit 1
fi
say "up and ok on $addrs"
