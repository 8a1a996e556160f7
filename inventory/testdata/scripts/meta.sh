#!/bin/sh
# Dynamic inventory with _meta.hostvars: ansible never calls --host.
if [ "$1" != "--list" ]; then echo "unexpected $*" >&2; exit 1; fi
cat <<'JSON'
{
  "web": {"hosts": ["web-2", "web-1"], "vars": {"http_port": 8080, "tier": "front"}, "children": ["canary"]},
  "canary": ["web-1"],
  "db": {"hosts": ["db-1"], "vars": {"ansible_user": "postgres", "ratio": 0.5}},
  "dc1": {"children": ["web", "db"], "vars": {"dc": "dc1", "tier": "any"}},
  "solo": {"ansible_host": "10.9.9.9"},
  "all": {"vars": {"ntp": ["a", "b"]}},
  "_meta": {"hostvars": {
     "web-1": {"ansible_host": "10.0.0.1", "tier": "canary-host"},
     "db-1": {"ansible_port": 5433, "big": 12345678901234, "nested": {"a": [1, {"b": null}]}}
  }}
}
JSON
