"""Stand-ins for the channel providers (tests and benchmarks only): a loopback HTTP server
implementing the outbound APIs of Telegram, Slack, Twilio and WhatsApp Cloud, and signers
that sign inbound webhooks as each provider documents."""

from coachops_devstack.standins.server import ProviderStandIns, Received

__all__ = ["ProviderStandIns", "Received"]
