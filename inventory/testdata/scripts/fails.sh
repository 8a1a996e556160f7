#!/bin/sh
echo "cannot reach the CMDB at cmdb.example" >&2
exit 3
