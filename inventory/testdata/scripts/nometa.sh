#!/bin/sh
# Dynamic inventory without _meta: host vars come from --host NAME.
case "$1" in
--list)
  echo '{"app": {"hosts": ["app-1", "app-2"], "vars": {"role": "app"}}, "ungrouped": {"hosts": ["loner"]}}' ;;
--host)
  case "$2" in
  app-1) echo '{"ansible_host": "10.1.0.1", "role": "override"}' ;;
  loner) echo '{"ansible_port": 2222}' ;;
  *) echo '{}' ;;
  esac ;;
*) echo "bad args" >&2; exit 2 ;;
esac
