"""Test-suite settings shared by every test directory."""

from hypothesis import HealthCheck, settings

# Property tests run on shared 2-core CI machines: a stall (JIT compilation, another
# process) must not fail a test through timing. What is generated and asserted is unchanged.
settings.register_profile("ntdyn", deadline=None, suppress_health_check=[HealthCheck.too_slow])
settings.load_profile("ntdyn")
