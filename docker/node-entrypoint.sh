#!/bin/sh
# One cluster node in a container: install the cluster's corosync.conf and authkey (made once by the
# `cluster-init` service), write this node's agent settings, start corosync, then run the agent.
set -eu
: "${NODE_NAME:?set NODE_NAME}" "${CLUSTER_IP:?set CLUSTER_IP}" "${TEST_IP:?set TEST_IP}"
install -m 0644 /cluster/corosync.conf /etc/corosync/corosync.conf
install -m 0400 /cluster/authkey /etc/corosync/authkey
cat > /etc/corolistener/config.json <<JSON
{
  "nodeName": "${NODE_NAME}",
  "clusterIp": "${CLUSTER_IP}",
  "clusterIpPrefix": ${CLUSTER_IP_PREFIX:-24},
  "clusterIpDevice": "${CLUSTER_IP_DEVICE:-eth0}",
  "testIp": "${TEST_IP}",
  "storageDir": "/shared",
  "logFile": "/var/log/corolistener/corolistener.log"
}
JSON
corosync -f &
for _ in 1 2 3 4 5 6 7 8 9 10; do corosync-cfgtool -s >/dev/null 2>&1 && break; sleep 1; done
exec /opt/corolistener/corolistener daemon --config /etc/corolistener/config.json
