"""The adapters by channel name, built once with the configured provider base URLs."""

from __future__ import annotations

from coachops_runtime.channels.adapter import Adapter
from coachops_runtime.channels.settings import ChannelSettings
from coachops_runtime.channels.slack.adapter import SlackAdapter
from coachops_runtime.channels.sms.adapter import SmsAdapter
from coachops_runtime.channels.telegram.adapter import TelegramAdapter
from coachops_runtime.channels.whatsapp.adapter import WhatsAppAdapter


def adapters(settings: ChannelSettings) -> dict[str, Adapter]:
    return {
        "telegram": TelegramAdapter(settings.telegram_api),
        "slack": SlackAdapter(settings.slack_api),
        "sms": SmsAdapter(settings.twilio_api),
        "whatsapp": WhatsAppAdapter(settings.whatsapp_api),
    }
