# ReefGuard: two commands for a new user.
#   make demo   — the lab demo (inline box in network namespaces), as root
#   make test   — the test suite
# Each does its own set-up on a fresh Debian 12 machine: apt packages, a
# virtualenv in .venv, the package installed editable with its test extras.
# A second run with nothing changed skips the installs (stamp files).

PYTHON      ?= python3
VENV        := .venv
PY          := $(VENV)/bin/python
APT_PACKAGES := python3 python3-venv python3-dev gcc make kmod \
                libnetfilter-queue-dev iptables ipset iproute2 conntrack \
                iperf3 iputils-ping ieee-data tcpdump chromium chromium-driver
APT_STAMP   := $(VENV)/.stamp-apt
PIP_STAMP   := $(VENV)/.stamp-pip

DIFF_PACKAGES := busybox mini-httpd lighttpd nginx-light fcgiwrap wget curl

.PHONY: demo test test-all bench differential replay-demo lint clean setup

setup: $(PIP_STAMP)

$(APT_STAMP): Makefile
	@if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
	  missing=$$(for p in $(APT_PACKAGES); do dpkg -s $$p >/dev/null 2>&1 || echo $$p; done); \
	  if [ -n "$$missing" ]; then \
	    echo "installing apt packages: $$missing"; \
	    apt-get update && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends $$missing; \
	  fi; \
	else echo "not root or no apt-get: skipping system packages ($(APT_PACKAGES))"; fi
	@mkdir -p $(VENV) && touch $@

$(PIP_STAMP): $(APT_STAMP) pyproject.toml
	@[ -x $(PY) ] || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e '.[test]'
	@touch $@

demo: $(PIP_STAMP)
	$(VENV)/bin/reefguard lab

# Offline demo without root: replay the bundled capture with bundled rules.
replay-demo: $(PIP_STAMP)
	$(VENV)/bin/reefguard replay -r pcaps/demo-camera-attack.pcap -S signatures -l out/demo

test: $(PIP_STAMP)
	$(PY) -m pytest -q -m "not slow"

test-all: $(PIP_STAMP)
	REEFGUARD_SLOW=1 $(PY) -m pytest -q

bench: $(PIP_STAMP)
	$(PY) bench/run_all.py

# The parsers against the programs devices run (tests/differential/), as
# root: HTTP against four web servers (installed; on a machine with systemd,
# Debian may start the nginx and lighttpd services on port 80: stop them if
# unwanted), telnet against busybox telnetd (busybox-static is downloaded
# into ~/.cache/reefguard and unpacked, never installed), and the HTTP
# clients busybox wget, GNU wget and curl against crafted responses.
differential: $(PIP_STAMP)
	@missing=$$(for p in $(DIFF_PACKAGES); do dpkg -s $$p >/dev/null 2>&1 || echo $$p; done); \
	if [ -n "$$missing" ]; then \
	  DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends $$missing; fi
	PYTHONPATH=. $(PY) -m tests.differential.run
	PYTHONPATH=. $(PY) -m tests.differential.telnet_run
	PYTHONPATH=. $(PY) -m tests.differential.response_run

clean:
	rm -rf $(VENV) out .pytest_cache
