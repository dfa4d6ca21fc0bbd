#!/bin/sh
# Turns the official image's environment variables into configuration, then runs the
# command (the server by default) as PID 1, so it receives SIGTERM itself.
set -eu
conf=/etc/rabbitmq/conf.d/20-environment.conf
{
  [ -n "${RABBITMQ_DEFAULT_USER:-}" ] && echo "default_user = ${RABBITMQ_DEFAULT_USER}"
  [ -n "${RABBITMQ_DEFAULT_PASS:-}" ] && echo "default_pass = ${RABBITMQ_DEFAULT_PASS}"
  [ -n "${RABBITMQ_DEFAULT_VHOST:-}" ] && echo "default_vhost = ${RABBITMQ_DEFAULT_VHOST}"
  [ -n "${RABBITMQ_NODE_PORT:-}" ] && echo "listeners.tcp.default = ${RABBITMQ_NODE_PORT}"
  true
} >"$conf"
cp /etc/rabbitmq/rabbitmq.conf /etc/rabbitmq/conf.d/10-image.conf
exec "$@"
