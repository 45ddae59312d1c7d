"""Differential tests: the parsers against the real programs a device runs.

* HTTP (`run.py`): the same crafted byte streams go to busybox httpd,
  mini_httpd, lighttpd and nginx and to `HttpParser`; every request a server
  runs must be visible to the parser, or flagged by an event the box drops
  on.
* Telnet (`telnet_run.py`): typings of the Mirai default passwords go to
  busybox telnetd (unpacked from Debian's busybox-static, never installed)
  with a device-login stand-in; every password the login reads must be in
  one of the parser's `telnet.password` readings.
* HTTP clients (`response_run.py`): crafted responses go to busybox wget,
  GNU wget and curl; every one a client saves as an ELF executable must be
  dropped by the shipped rules, replayed through the pipeline in inline
  mode, however its bytes are cut into segments.

Each runs in a network namespace of its own, as root, and is slow-marked
(`make test-all`); `make differential` runs all three."""
