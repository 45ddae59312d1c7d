"""Fixtures for the profiling tests; factories live in devicefactories.py."""
import pytest

from ips.config import Config


@pytest.fixture
def config():
    cfg = Config()
    cfg.home_net = "[192.0.2.0/24]"
    cfg.learning_days = 1.0
    return cfg
