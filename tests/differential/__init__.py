"""Differential tests: the HTTP parser against real embedded web servers.

The same crafted byte streams go to busybox httpd, mini_httpd, lighttpd and
nginx (run in a network namespace of their own) and to `HttpParser`; every
request a server runs must be visible to the parser, or flagged by an event
the box drops on. See `run.py`."""
