#!/bin/sh
# This version starts but is broken: busybox httpd sends /health (a directory)
# to /health/ and that here, which answers 500.
printf 'Status: 500 Internal Server Error\r\nContent-Type: text/plain\r\n\r\nunhealthy'
