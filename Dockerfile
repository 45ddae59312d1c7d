# ReefGuard appliance image.
# Run with host networking and NET_ADMIN (it creates a bridge, iptables
# chains, ipsets and NFQUEUE consumers on the host):
#   docker run --rm --network host --cap-add NET_ADMIN --cap-add NET_RAW \
#     -v /var/lib/reefguard:/var/lib/reefguard reefguard \
#     run --wan eth0 --lan eth1 --web 127.0.0.1:8080
FROM debian:12-slim

ARG DEBIAN_FRONTEND=noninteractive
# Debian stable only takes security fixes into these packages; pinning exact
# versions would make the image fail to build after each point release.
# hadolint ignore=DL3008
RUN apt-get update \
 && apt-get install -y --no-install-recommends \
      python3 python3-venv python3-dev gcc make kmod \
      libnetfilter-queue-dev iptables ipset iproute2 conntrack ieee-data \
 && rm -rf /var/lib/apt/lists/*

WORKDIR /opt/reefguard
COPY pyproject.toml README.md ./
COPY ips ./ips
COPY signatures ./signatures
COPY webui ./webui
COPY appliance ./appliance
RUN python3 -m venv /opt/reefguard/.venv \
 && /opt/reefguard/.venv/bin/pip install --no-cache-dir .

ENV PATH=/opt/reefguard/.venv/bin:$PATH
VOLUME ["/var/lib/reefguard"]
EXPOSE 8080
STOPSIGNAL SIGTERM
ENTRYPOINT ["reefguard"]
CMD ["run", "--wan", "eth0", "--lan", "eth1", "--data-dir", "/var/lib/reefguard", "--web", "127.0.0.1:8080"]
